// The local provider of the room interface (room.js): livestage's own signalling WebSocket and
// WebRTC between browsers. The broadcaster's browser sends its camera and microphone to each
// viewer over a send-only RTCPeerConnection (a mesh, sized for the viewer cap); viewers only
// receive. The server relays offers, answers and ICE candidates (streams/signalling_endpoints.py
// documents the protocol) and never sees the media.

const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const PING_MS = 20_000;
const UNAUTHORIZED = 4401;
const FORBIDDEN = 4403;
const NOT_LIVE = 4404;
const FULL = 4409;
const REPLACED = 4410;

// One signalling connection that comes back when it drops, until it ends for good. A refused
// or expired token is exchanged once for a fresh join from the server (`refreshJoin`).
class Signal {
  constructor(join, { onMessage, onState, refreshJoin }) {
    Object.assign(this, { join, onMessage, onState, refreshJoin });
    this.attempt = 0;
    this.refreshed = false;
    this.joined = false;
    this.over = false;
    this.lastError = "";
    this.welcomed = new Promise((resolve, reject) => Object.assign(this, { resolve, reject }));
    this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
    this.open();
  }

  open() {
    const url = new URL(this.join.signal_url, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = (this.ws = new WebSocket(url));
    ws.onopen = () => ws.send(JSON.stringify({ type: "join", token: this.join.token, name: this.join.user_name }));
    ws.onmessage = (event) => this.received(event.data);
    ws.onclose = (event) => {
      if (ws === this.ws) this.closed(event.code, event.reason);
    };
  }

  received(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "error") this.lastError = message.message || message.code;
    if (message.type === "welcome") {
      this.joined = true;
      this.attempt = 0;
      this.refreshed = false;
      this.resolve(message);
    }
    this.onMessage(message);
  }

  async closed(code, reason) {
    if (this.over) return;
    const detail = this.lastError || reason;
    this.lastError = "";
    if (code === 1000 || code === NOT_LIVE) return this.end("ended", detail);
    if (code === REPLACED) return this.end("replaced", "This broadcast continued in another window.");
    if (code === FULL) return this.end("full", detail);
    if (code === FORBIDDEN) return this.end("failed", detail);
    if (code === UNAUTHORIZED) {
      if (this.refreshed || !this.refreshJoin) return this.end("failed", detail);
      this.refreshed = true;
      try {
        this.join = await this.refreshJoin();
      } catch (error) {
        return this.end(error.code === "stream_full" ? "full" : "ended", error.message);
      }
      if (!this.over) this.open();
      return;
    }
    // Dropped (network, server restart, too slow): come back with the same token.
    this.onState("reconnecting");
    const delay = RETRY_MS[Math.min(this.attempt++, RETRY_MS.length - 1)];
    setTimeout(() => this.over || this.open(), delay);
  }

  // Before the first welcome, the end is the join's failure; after it, a change of state.
  end(state, detail) {
    this.over = true;
    clearInterval(this.pinger);
    if (this.joined) this.onState(state, detail);
    else this.reject(Object.assign(new Error(detail || "Could not join the stream."), { state }));
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    if (this.over) return;
    this.over = true;
    clearInterval(this.pinger);
    this.send({ type: "leave" });
    this.ws.close(1000, "left");
  }
}

// Messages for one RTCPeerConnection are handled one after another: an ICE candidate must not
// overtake the description it belongs to.
function serially() {
  let queue = Promise.resolve();
  return (task) => {
    queue = queue.then(task).catch((error) => console.warn("livestage: WebRTC step failed", error));
  };
}

function describe(peer) {
  return { id: peer.peer_id, name: peer.name, role: peer.role, viewer: peer.viewer || peer.peer_id };
}

async function capture(constraints) {
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (error) {
    throw new Error(`Your browser did not let livestage use the camera and microphone (${error.name}). Allow them for this site and try again.`);
  }
}

async function devices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  const list = (kind) => all.filter((d) => d.kind === kind).map((d) => ({ deviceId: d.deviceId, label: d.label }));
  return { videoInput: list("videoinput"), audioInput: list("audioinput") };
}

export async function broadcast(join, options) {
  const camera = await capture({ audio: true, video: true });
  const tracks = { audio: camera.getAudioTracks()[0], video: camera.getVideoTracks()[0], camera: null };
  tracks.camera = tracks.video;
  const outgoing = new MediaStream(camera.getTracks());
  options.video.srcObject = outgoing;
  const viewers = new Map(); // peer id -> {peer, pc, step}
  let iceServers = join.ice_servers || [];
  let screen = null;

  const controls = () => ({
    audio: Boolean(tracks.audio && tracks.audio.enabled),
    video: Boolean(tracks.video && tracks.video.enabled),
    screen: Boolean(screen),
  });
  const report = () => options.onPeers([...viewers.values()].map((v) => describe(v.peer)));

  function drop(peerId) {
    const viewer = viewers.get(peerId);
    if (viewer) viewer.pc.close();
    viewers.delete(peerId);
  }

  function send(peer) {
    drop(peer.peer_id);
    const pc = new RTCPeerConnection({ iceServers });
    const viewer = { peer, pc, step: serially() };
    viewers.set(peer.peer_id, viewer);
    for (const track of outgoing.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [outgoing] });
    pc.onicecandidate = (event) =>
      signal.send({ type: "ice", to: peer.peer_id, candidate: event.candidate ? event.candidate.toJSON() : null });
    viewer.step(async () => {
      await pc.setLocalDescription(await pc.createOffer());
      signal.send({ type: "offer", to: peer.peer_id, sdp: pc.localDescription.toJSON() });
    });
  }

  function onMessage(message) {
    const viewer = viewers.get(message.from);
    switch (message.type) {
      case "welcome":
        iceServers = message.ice_servers || iceServers;
        for (const id of viewers.keys()) if (!message.peers.some((p) => p.peer_id === id)) drop(id);
        for (const peer of message.peers) {
          const known = viewers.get(peer.peer_id);
          if (!known || known.pc.connectionState !== "connected") send(peer);
        }
        report();
        options.onState("live");
        break;
      case "peer-joined":
        send(message);
        report();
        break;
      case "peer-left":
        drop(message.peer_id);
        report();
        break;
      case "request-offer":
        if (viewer) send(viewer.peer);
        break;
      case "answer":
        if (viewer) viewer.step(() => viewer.pc.setRemoteDescription(message.sdp));
        break;
      case "ice":
        if (viewer && message.candidate) viewer.step(() => viewer.pc.addIceCandidate(message.candidate));
        break;
      case "room-ended":
        options.onState("ended");
        break;
    }
  }

  function stopMedia() {
    for (const id of [...viewers.keys()]) drop(id);
    for (const track of [...camera.getTracks(), ...outgoing.getTracks()]) track.stop();
    if (screen) screen.stop();
  }

  const signal = new Signal(join, {
    onMessage,
    refreshJoin: options.refreshJoin,
    onState: (state, detail) => {
      if (["ended", "replaced", "failed"].includes(state)) stopMedia();
      options.onState(state, detail);
    },
  });
  try {
    await signal.welcomed;
  } catch (error) {
    stopMedia();
    throw error;
  }

  function replace(kind, track) {
    const old = tracks[kind];
    outgoing.removeTrack(old);
    outgoing.addTrack(track);
    track.enabled = old.enabled;
    tracks[kind] = track;
    for (const { pc } of viewers.values()) {
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === track.kind);
      if (sender) sender.replaceTrack(track);
    }
    options.video.srcObject = outgoing;
  }

  async function useCamera(deviceId) {
    const fresh = (await capture({ video: { deviceId: { exact: deviceId } } })).getVideoTracks()[0];
    const old = tracks.camera;
    tracks.camera = fresh;
    if (!screen) replace("video", fresh);
    old.stop();
  }

  async function useMicrophone(deviceId) {
    const fresh = (await capture({ audio: { deviceId: { exact: deviceId } } })).getAudioTracks()[0];
    const old = tracks.audio;
    replace("audio", fresh);
    old.stop();
  }

  async function setScreenShare(on) {
    if (on && !screen) {
      const shared = await navigator.mediaDevices.getDisplayMedia({ video: true });
      screen = shared.getVideoTracks()[0];
      screen.onended = () => setScreenShare(false);
      replace("video", screen);
    } else if (!on && screen) {
      const shared = screen;
      screen = null;
      replace("video", tracks.camera);
      shared.stop();
    }
    options.onControls(controls());
  }

  navigator.mediaDevices.addEventListener("devicechange", async () => options.onDevices(await devices()));
  options.onDevices(await devices());
  options.onControls(controls());
  return {
    setAudio(on) {
      tracks.audio.enabled = on;
      options.onControls(controls());
    },
    setVideo(on) {
      tracks.video.enabled = on;
      options.onControls(controls());
    },
    setScreenShare,
    useCamera,
    useMicrophone,
    controls,
    leave() {
      signal.close();
      stopMedia();
    },
  };
}

export async function watch(join, options) {
  let host = null;
  let pc = null;
  let step = serially();
  let iceServers = join.ice_servers || [];

  function receive(message) {
    if (pc) pc.close();
    pc = new RTCPeerConnection({ iceServers });
    step = serially();
    const from = message.from;
    const current = pc;
    current.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      if (options.video.srcObject !== stream) play(options.video, stream, options.onState);
    };
    current.onicecandidate = (event) =>
      signal.send({ type: "ice", to: from, candidate: event.candidate ? event.candidate.toJSON() : null });
    current.onconnectionstatechange = () => {
      if (current === pc && current.connectionState === "failed") signal.send({ type: "request-offer", to: from });
    };
    step(async () => {
      await current.setRemoteDescription(message.sdp);
      await current.setLocalDescription(await current.createAnswer());
      signal.send({ type: "answer", to: from, sdp: current.localDescription.toJSON() });
    });
  }

  function onMessage(message) {
    switch (message.type) {
      case "welcome":
        iceServers = message.ice_servers || iceServers;
        host = message.peers.find((p) => p.role === options.broadcasterRole) || null;
        options.onPeers(host ? [describe(host)] : []);
        options.onState(host ? "live" : "waiting");
        break;
      case "peer-joined":
        host = message;
        options.onPeers([describe(host)]);
        options.onState("live");
        break;
      case "peer-left":
        if (host && message.peer_id === host.peer_id) {
          host = null;
          options.onPeers([]);
          options.onState("waiting");
        }
        break;
      case "offer":
        receive(message);
        break;
      case "ice":
        if (pc && message.candidate) {
          const current = pc;
          step(() => current.addIceCandidate(message.candidate));
        }
        break;
      case "room-ended":
        options.onState("ended");
        break;
    }
  }

  const signal = new Signal(join, { onMessage, onState: options.onState, refreshJoin: options.refreshJoin });
  await signal.welcomed;
  return {
    leave() {
      signal.close();
      if (pc) pc.close();
    },
  };
}

// Browsers refuse to start sound nobody asked for: start muted then, and let the person unmute.
function play(video, stream, onState) {
  video.srcObject = stream;
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    onState("muted");
  });
}
