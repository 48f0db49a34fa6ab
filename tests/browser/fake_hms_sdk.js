// A fake of the 100ms browser SDK (@100mslive/hms-video-store) for the browser journeys.
//
// The pages load the SDK with `import(sdkUrl)`; the tests serve this module at that URL. It keeps
// the small slice of the SDK the pages use: HMSReactiveStore (getStore/getActions/
// triggerOnSubscribe), the selectors, and the actions. Nothing is sent to 100ms: `join()` only
// decodes the token (no signature check) and records it. `getAuthTokenByRoomCode` is the
// exception: it POSTs {code, user_id} to the endpoint the page gives it, like the real SDK, so the
// room-code fallback exchanges codes at the 100ms emulator for real.
//
// Test hooks on `window.__hms`:
//   calls                  every action call, in order: {name, args} (elements become "#id")
//   joins                  every join: {room_id, role, user_id, type, userName, settings}
//   state()                a JSON copy of the reactive state
//   addPeer({id, name, roleName, videoTrack?}) / removePeer(id)   remote peers come and go
//   setRoomState(state, error?)   the connection as `selectRoomState` reports it (an
//                               HMSRoomState value); `error` {message} is pushed to the errors
//   failNext(action, message)   the next call of `action` rejects with Error(message)

const hooks = (window.__hms = window.__hms || { calls: [], joins: [], failures: {} });

const DEVICES = {
  videoInput: [
    { deviceId: "fake-camera-1", label: "Fake camera 1", kind: "videoinput" },
    { deviceId: "fake-camera-2", label: "Fake camera 2", kind: "videoinput" },
  ],
  audioInput: [
    { deviceId: "fake-mic-1", label: "Fake microphone 1", kind: "audioinput" },
    { deviceId: "fake-mic-2", label: "Fake microphone 2", kind: "audioinput" },
  ],
  audioOutput: [],
};

export const HMSRoomState = {
  Disconnected: "Disconnected",
  Preview: "Preview",
  Connecting: "Connecting",
  Connected: "Connected",
  Reconnecting: "Reconnecting",
  Disconnecting: "Disconnecting",
  Failed: "Failed",
};

let state = {
  connected: false,
  roomState: HMSRoomState.Disconnected,
  errors: [],
  peers: [],
  audioEnabled: false,
  videoEnabled: false,
  screenShared: false,
  devices: DEVICES,
};
const subscribers = new Set();

function update(changes) {
  state = { ...state, ...changes };
  for (const subscriber of [...subscribers]) subscriber.check();
}

export const selectIsConnectedToRoom = (s) => s.connected;
export const selectRoomState = (s) => s.roomState;
export const selectPeers = (s) => s.peers;
export const selectLocalPeer = (s) => s.peers.find((p) => p.isLocal) ?? null;
export const selectRemotePeers = (s) => s.peers.filter((p) => !p.isLocal);
export const selectPeerCount = (s) => s.peers.length;
export const selectIsLocalAudioEnabled = (s) => s.audioEnabled;
export const selectIsLocalVideoEnabled = (s) => s.videoEnabled;
export const selectIsLocalScreenShared = (s) => s.screenShared;
export const selectDevices = (s) => s.devices;

function plain(value) {
  if (value instanceof Element) return value.id ? `#${value.id}` : value.tagName.toLowerCase();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function record(name, args) {
  hooks.calls.push({ name, args: plain(args) });
  const failure = hooks.failures[name];
  if (failure !== undefined) {
    delete hooks.failures[name];
    throw new Error(failure);
  }
}

function decodePayload(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) throw new Error("fake 100ms SDK: the auth token is not a JWT");
  const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// Each action is async like the SDK's: it records the call, then acts on the next microtask.
const actions = {
  async join(config) {
    record("join", [config]);
    const claims = decodePayload(config.authToken);
    hooks.joins.push({
      room_id: claims.room_id,
      role: claims.role,
      user_id: claims.user_id,
      type: claims.type,
      userName: config.userName,
      settings: config.settings ?? {},
    });
    const local = {
      id: "local-peer",
      name: config.userName,
      roleName: claims.role,
      isLocal: true,
      videoTrack: "local-video",
      audioTrack: "local-audio",
    };
    const settings = config.settings ?? {};
    update({
      connected: true,
      roomState: HMSRoomState.Connected,
      peers: [local, ...state.peers.filter((p) => !p.isLocal)],
      audioEnabled: !settings.isAudioMuted,
      videoEnabled: !settings.isVideoMuted,
    });
  },
  async leave() {
    record("leave", []);
    update({ connected: false, roomState: HMSRoomState.Disconnected, peers: [], screenShared: false });
  },
  async attachVideo(trackId, videoElement) {
    record("attachVideo", [trackId, videoElement]);
  },
  async detachVideo(trackId, videoElement) {
    record("detachVideo", [trackId, videoElement]);
  },
  async setLocalAudioEnabled(enabled) {
    record("setLocalAudioEnabled", [enabled]);
    update({ audioEnabled: Boolean(enabled) });
  },
  async setLocalVideoEnabled(enabled) {
    record("setLocalVideoEnabled", [enabled]);
    update({ videoEnabled: Boolean(enabled) });
  },
  async setScreenShareEnabled(enabled) {
    record("setScreenShareEnabled", [enabled]);
    update({ screenShared: Boolean(enabled) });
  },
  async setVideoSettings(settings) {
    record("setVideoSettings", [settings]);
  },
  async setAudioSettings(settings) {
    record("setAudioSettings", [settings]);
  },
  async getAuthTokenByRoomCode(request, options) {
    record("getAuthTokenByRoomCode", [request, options]);
    const endpoint = options?.endpoint ?? "https://auth.100ms.live/v2/token";
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: request.roomCode, user_id: request.userId }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.message || `room code exchange failed (${response.status})`);
    }
    return data.token;
  },
};

class FakeStore {
  constructor(owner) {
    this.owner = owner;
  }

  getState(selector) {
    return selector ? selector(state) : state;
  }

  // The SDK's contract: `callback(selected, previous)` whenever the selected value changes;
  // once at once as well when `triggerOnSubscribe()` was called. Returns an unsubscribe.
  subscribe(callback, selector = (s) => s) {
    const subscriber = {
      last: selector(state),
      check() {
        const next = selector(state);
        if (Object.is(next, this.last)) return;
        const previous = this.last;
        this.last = next;
        callback(next, previous);
      },
    };
    subscribers.add(subscriber);
    if (this.owner.triggered) callback(subscriber.last, undefined);
    return () => subscribers.delete(subscriber);
  }
}

export class HMSReactiveStore {
  constructor() {
    this.triggered = false;
    this.store = new FakeStore(this);
    hooks.calls.push({ name: "new HMSReactiveStore", args: [] });
  }

  triggerOnSubscribe() {
    this.triggered = true;
  }

  getStore() {
    return this.store;
  }

  getActions() {
    return actions;
  }
}

hooks.state = () => JSON.parse(JSON.stringify(state));
hooks.addPeer = ({ id, name, roleName, videoTrack = null }) => {
  const peer = { id, name, roleName, isLocal: false, videoTrack, audioTrack: null };
  update({ peers: [...state.peers.filter((p) => p.id !== id), peer] });
};
hooks.removePeer = (id) => update({ peers: state.peers.filter((p) => p.id !== id) });
hooks.setRoomState = (roomState, error) => {
  update({ roomState, errors: error ? [...state.errors, error] : state.errors });
};
hooks.failNext = (action, message) => {
  hooks.failures[action] = message;
};
