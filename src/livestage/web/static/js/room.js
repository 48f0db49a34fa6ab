// The room interface the pages use, whichever provider runs the stream. The join answer from the
// server says which (`join.provider`); each provider is one small module implementing:
//
//   broadcast(join, options) -> Broadcast        the influencer's page
//     options: {sdkUrl, video, refreshJoin, onPeers, onDevices, onControls, onState}
//   watch(join, options) -> Viewing              a viewer's page
//     options: {sdkUrl, video, broadcasterRole, refreshJoin, onPeers, onState}
//
//   Broadcast: {setAudio(on), setVideo(on), setScreenShare(on), useCamera(deviceId),
//               useMicrophone(deviceId), controls() -> {audio, video, screen}, leave()}
//   Viewing:   {leave()}
//
// Callbacks:
//   onPeers([{id, name, role, viewer}])  everyone else in the room that this page may know of;
//                                        `viewer` is the identity (tabs of one viewer share it)
//   onDevices({videoInput, audioInput})  lists of {deviceId, label}
//   onControls({audio, video, screen})   the local tracks' on/off state
//   onState(state, detail)               "live" | "reconnecting" | "reconnected" | "waiting" (no
//                                        broadcaster yet)
//                                        | "ended" | "replaced" (continued in another window)
//                                        | "full" | "failed" (detail: a message for a person)
//   refreshJoin() -> join                a fresh join answer from the server, when the token
//                                        expired during a long stream
export async function provider(join) {
  return join.provider === "local" ? import("./local.js") : import("./hms.js");
}
