// The 100ms provider of the room interface (room.js): the 100ms browser SDK, loaded from the
// configured URL (LIVESTAGE_HMS_SDK_URL; by default the pinned SDK livestage serves itself). One
// SDK store per page, subscribed once; going live again after End Stream reuses it, and the
// subscriptions report to the current room's callbacks.
let hms = null;
let current = null;

const SELECTORS = {
  localPeer: "selectLocalPeer",
  peers: "selectPeers",
  audio: "selectIsLocalAudioEnabled",
  video: "selectIsLocalVideoEnabled",
  screen: "selectIsLocalScreenShared",
  devices: "selectDevices",
  roomState: "selectRoomState",
};

async function load(sdkUrl) {
  if (hms) return hms;
  let sdk;
  try {
    sdk = await import(sdkUrl);
  } catch (error) {
    console.error(error);
    throw new Error(
      `The 100ms video SDK could not be loaded from ${sdkUrl}, so this page cannot join the room. ` +
        "If you run this site: install it with `make deps`, or set LIVESTAGE_HMS_SDK_URL.",
    );
  }
  const reactive = new sdk.HMSReactiveStore();
  reactive.triggerOnSubscribe();
  hms = { sdk, store: reactive.getStore(), actions: reactive.getActions() };
  for (const [name, selector] of Object.entries(SELECTORS)) {
    hms.store.subscribe((value) => current && current[name] && current[name](value), sdk[selector]);
  }
  return hms;
}

// A room's callbacks start after its join, with the state as it is then (as a subscription made
// at that moment would report it).
function follow(handlers) {
  current = handlers;
  for (const [name, handler] of Object.entries(handlers)) {
    handler(hms.store.getState(hms.sdk[SELECTORS[name]]));
  }
}

function describe(peer) {
  // customerUserId: the user_id of the peer's token, the viewer's identity (SPEC §4).
  return { id: peer.id, name: peer.name, role: peer.roleName, viewer: peer.customerUserId || peer.id };
}

// The room's connection as the SDK reports it (`selectRoomState`). `isConnected` cannot tell: it
// stays true while the SDK reconnects and turns false only after a leave. Connecting is the join
// itself (the page says so already); Disconnected while this page has not left means the room
// removed it (ended, or this peer was removed); after a failure it is the SDK's own leave.
function roomStates(sdk, options) {
  const S = sdk.HMSRoomState;
  let lost = false;
  let failed = false;
  return (state) => {
    if (failed) return;
    if (state === S.Reconnecting) {
      lost = true;
      options.onState("reconnecting");
    } else if (state === S.Connected && lost) {
      lost = false;
      options.onState("reconnected");
    } else if (state === S.Failed) {
      failed = true;
      options.onState("failed", failure());
    } else if (state === S.Disconnected) {
      options.onState("ended");
    }
  };
}

function failure() {
  const errors = hms.store.getState().errors || [];
  const last = errors[errors.length - 1];
  const reason = last && (last.description || last.message);
  return `The connection to the room failed${reason ? `: ${reason}` : ""}. Reload the page to try again.`;
}

async function authToken(actions, join) {
  if (join.kind === "token") return join.token;
  return actions.getAuthTokenByRoomCode(
    { roomCode: join.room_code, userId: join.user_id },
    { endpoint: join.token_endpoint },
  );
}

export async function broadcast(join, options) {
  const { sdk, store, actions } = await load(options.sdkUrl);
  const token = await authToken(actions, join);
  const controls = () => ({
    audio: store.getState(sdk.selectIsLocalAudioEnabled),
    video: store.getState(sdk.selectIsLocalVideoEnabled),
    screen: store.getState(sdk.selectIsLocalScreenShared),
  });
  const handlers = {
    localPeer: (peer) => peer && peer.videoTrack && actions.attachVideo(peer.videoTrack, options.video),
    peers: (peers) => options.onPeers((peers || []).filter((p) => !p.isLocal).map(describe)),
    audio: () => options.onControls(controls()),
    video: () => options.onControls(controls()),
    screen: () => options.onControls(controls()),
    devices: (devices) => devices && options.onDevices(devices),
    roomState: roomStates(sdk, options),
  };
  await actions.join({
    userName: join.user_name,
    authToken: token,
    settings: { isAudioMuted: false, isVideoMuted: false },
    rememberDeviceSelection: true,
  });
  follow(handlers);
  return {
    setAudio: (on) => actions.setLocalAudioEnabled(on),
    setVideo: (on) => actions.setLocalVideoEnabled(on),
    setScreenShare: (on) => actions.setScreenShareEnabled(on),
    useCamera: (deviceId) => actions.setVideoSettings({ deviceId }),
    useMicrophone: (deviceId) => actions.setAudioSettings({ deviceId }),
    controls,
    leave: async () => {
      current = null;
      await actions.leave();
    },
  };
}

export async function watch(join, options) {
  const { sdk, actions } = await load(options.sdkUrl);
  const handlers = {
    peers: (peers) => {
      const list = peers || [];
      const host = list.find((p) => p.roleName === options.broadcasterRole);
      if (host && host.videoTrack) actions.attachVideo(host.videoTrack, options.video);
      options.onPeers(list.filter((p) => !p.isLocal).map(describe));
      options.onState(host ? "live" : "waiting");
    },
    roomState: roomStates(sdk, options),
  };
  await actions.join({
    userName: join.user_name,
    authToken: join.token,
    settings: { isAudioMuted: true, isVideoMuted: true },
  });
  follow(handlers);
  return {
    leave: async () => {
      current = null;
      await actions.leave();
    },
  };
}
