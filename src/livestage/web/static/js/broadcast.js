import { api, csrfToken, formatElapsed, pageConfig, show } from "./api.js";
import { startChat } from "./chat.js";
import { provider } from "./room.js";
import { follow } from "./live-updates.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);
const startForm = $("start-form");
const codeForm = $("code-form");
let room = null;
let startedAt = null;
let elapsedTimer = null;
let details = { title: "", description: "" };
// The viewer count: the server's (from provider events, authoritative), or what the room shows
// this page when that is more (a join the server has not reported yet, or webhooks not reaching
// the server at all). The participants list is the room's.
let streamId = config.current ? config.current.id : null;
let serverUpdate = null;
let sdkViewers = 0;
let ending = false;
let chat = null;
let peers = [];
let pictureTimer = null;
// The directory card's picture: a small still of the preview this often (local provider).
const PICTURE_MS = 5000;

function setStatus(text) {
  $("status").textContent = text;
}

function setProblem(text) {
  $("problem").textContent = text || "";
  show($("problem"), Boolean(text));
}

async function join(result) {
  setStatus("Joining your room…");
  streamId = result.stream.id;
  const rooms = await provider(result.join);
  room = await rooms.broadcast(result.join, {
    sdkUrl: config.sdkUrl,
    video: $("preview"),
    refreshJoin: async () => (await api("/api/streams", details)).join,
    onPeers: renderPeers,
    onDevices: renderDevices,
    onControls: renderControls,
    onState: onRoomState,
  });
  const stream = await api("/api/streams/current/joined");
  streamId = stream.id;
  startedAt = stream.started_at ? new Date(stream.started_at) : new Date();
  renderViewers();
  show(startForm, false);
  show(codeForm, false);
  show($("stage"), true);
  setStatus(`You are live: ${stream.title}`);
  if (result.stream.hls_problem) setProblem(`HLS did not start: ${result.stream.hls_problem}`);
  elapsedTimer = elapsedTimer || setInterval(renderElapsed, 1000);
  chat = chat || startChat(config.handle, { onNames: () => renderPeers(peers) });
  if (result.join.provider === "local" && !pictureTimer) {
    setTimeout(sendPicture, 1000); // the first frames may still be black
    pictureTimer = setInterval(sendPicture, PICTURE_MS);
  }
}

// A 320-pixel-wide JPEG of the preview for the directory card; a failed one waits for the next.
function sendPicture() {
  const video = $("preview");
  if (!startedAt || !video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = Math.round((320 * video.videoHeight) / video.videoWidth);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob((blob) => {
    if (!blob) return;
    fetch("/api/streams/current/thumbnail", {
      method: "POST",
      headers: { "content-type": "image/jpeg", "x-csrf-token": csrfToken() },
      body: blob,
    }).catch(() => {});
  }, "image/jpeg", 0.7);
}

function renderElapsed() {
  if (startedAt) $("elapsed").textContent = formatElapsed((Date.now() - startedAt.getTime()) / 1000);
}

function onRoomState(state, detail) {
  if (!startedAt) return;
  if (state === "reconnecting") setStatus("Disconnected: reconnecting…");
  else if (state === "reconnected") setStatus(`Reconnected: you are live: ${details.title}`);
  else if (state === "live") setStatus(`You are live: ${details.title}`);
  else if (state === "replaced") finish(detail, { left: true });
  else if (state === "ended") finish("Your stream has ended.");
  else if (state === "failed") {
    setStatus("Disconnected.");
    setProblem(detail);
  }
}

function renderControls(on) {
  $("toggle-audio").textContent = on.audio ? "Mute" : "Unmute";
  $("toggle-video").textContent = on.video ? "Camera off" : "Camera on";
  $("toggle-screen").textContent = on.screen ? "Stop sharing" : "Share screen";
}

// A viewer by the name they chat under, else the name their page joined with, else a short
// form of their identity (anonymous viewers who never chatted).
function participantName(peer) {
  const chatName = chat && chat.names.get(peer.viewer);
  if (chatName) return chatName;
  if (peer.name && peer.name !== "Viewer") return peer.name;
  return `Viewer ${String(peer.viewer || peer.id).slice(-4)}`;
}

function renderPeers(others) {
  peers = others;
  // Two tabs of one viewer are one viewer (SPEC §4).
  const viewers = others.filter((p) => p.role !== config.broadcasterRole);
  sdkViewers = new Set(viewers.map((p) => p.viewer)).size;
  renderViewers();
  const byViewer = new Map(viewers.map((p) => [p.viewer || p.id, p]));
  $("participants").replaceChildren(
    ...[...byViewer.values()].map((p) => Object.assign(document.createElement("li"), { textContent: participantName(p) })),
  );
}

function renderViewers() {
  const server = serverUpdate && serverUpdate.stream_id === streamId ? serverUpdate.viewers : 0;
  $("viewers").textContent = String(Math.max(server, sdkViewers));
}

function onServerUpdate(update) {
  serverUpdate = update;
  renderViewers();
  const over = update.status === "ended" || update.status === "failed";
  // Ended elsewhere (an admin, another tab, the provider, the reconciler): leave the room too.
  if (over && update.stream_id === streamId && !ending) finish("Your stream has ended.");
}

async function finish(message, { left = false } = {}) {
  if (!startedAt) return; // not live on this page, or already finished
  startedAt = null;
  sdkViewers = 0;
  clearInterval(pictureTimer);
  pictureTimer = null;
  if (chat) chat.close();
  chat = null;
  const leaving = room;
  room = null;
  if (!left) await leaving.leave();
  show($("stage"), false);
  show(startForm, true);
  setStatus(message);
}

function renderDevices(devices) {
  if (!devices) return;
  for (const [id, list] of [["camera", devices.videoInput || []], ["microphone", devices.audioInput || []]]) {
    $(id).replaceChildren(...list.map((d) => new Option(d.label || d.deviceId, d.deviceId)));
  }
}

async function start(event, path, extra) {
  event.preventDefault();
  setProblem("");
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    const result = await api(path, { ...details, ...extra });
    await join(result);
  } catch (error) {
    // Only a room_code_required answer offers the room-code form; provider_unavailable means
    // nothing can start a stream now (a code would fail too), so any form shown before goes.
    if (error.code === "room_code_required") {
      show(codeForm, true);
      setStatus("");
    } else if (error.code === "provider_unavailable") {
      show(codeForm, false);
    }
    setProblem(error.message);
  } finally {
    if (button) button.disabled = false;
  }
}

startForm.addEventListener("submit", (event) => {
  const form = new FormData(startForm);
  details = { title: form.get("title"), description: form.get("description") || "" };
  start(event, "/api/streams", { hls: form.get("hls") === "on" });
});

codeForm.addEventListener("submit", (event) => {
  const code = new FormData(codeForm).get("code").trim().toLowerCase();
  if (!/^[a-z]{3}-[a-z]{3,4}-[a-z]{3}$/.test(code)) {
    event.preventDefault();
    setProblem("A room code looks like abc-defg-hij: letters in groups of 3, 4 and 3, separated by dashes.");
    return;
  }
  start(event, "/api/streams/room-code", { code });
});

$("toggle-audio").addEventListener("click", () => room && room.setAudio(!room.controls().audio));
$("toggle-video").addEventListener("click", () => room && room.setVideo(!room.controls().video));
$("toggle-screen").addEventListener("click", async () => {
  if (!room) return;
  try {
    await room.setScreenShare(!room.controls().screen);
  } catch (error) {
    setProblem(`Screen sharing is not available: ${error.message}`);
  }
});
$("camera").addEventListener("change", (e) => room && room.useCamera(e.target.value));
$("microphone").addEventListener("change", (e) => room && room.useMicrophone(e.target.value));
$("end").addEventListener("click", async () => {
  $("end").disabled = true;
  ending = true;
  try {
    await api("/api/streams/current/end");
    await finish("Your stream has ended.");
  } catch (error) {
    setProblem(error.message);
  } finally {
    ending = false;
    $("end").disabled = false;
  }
});
window.addEventListener("beforeunload", () => room && room.leave());
follow(config.handle, onServerUpdate);
// The button stays disabled until the handlers above exist, so an early click cannot submit the
// form natively (a page reload instead of going live).
$("start").disabled = $("start").dataset.enabled !== "true";

if (config.current) {
  // Already live (reload, second tab): rejoin the same stream; the server returns the same room.
  details = { title: config.current.title, description: config.current.description };
  setStatus("Rejoining your live stream…");
  api("/api/streams", details).then(join).catch((error) => setProblem(error.message));
}
