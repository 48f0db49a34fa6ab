import { api, formatElapsed, pageConfig, show } from "./api.js";
import { connect, tokenFor } from "./hms.js";
import { follow } from "./live-updates.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);
const startForm = $("start-form");
const codeForm = $("code-form");
let hms = null;
let startedAt = null;
let watching = false;
let details = { title: "", description: "" };
// The viewer count: the server's (from provider webhooks, authoritative), or what the SDK sees in
// the room when that is more (a join the webhook has not reported yet, or webhooks not reaching
// the server at all). The participants list is the SDK's.
let streamId = config.current ? config.current.id : null;
let serverUpdate = null;
let sdkViewers = 0;
let ending = false;

function setStatus(text) {
  $("status").textContent = text;
}

function setProblem(text) {
  $("problem").textContent = text || "";
  show($("problem"), Boolean(text));
}

async function join(result) {
  hms = hms || (await connect(config.sdkUrl));
  setStatus("Joining your room…");
  streamId = result.stream.id;
  const authToken = await tokenFor(hms, result.join);
  await hms.actions.join({
    userName: result.join.user_name,
    authToken,
    settings: { isAudioMuted: false, isVideoMuted: false },
    rememberDeviceSelection: true,
  });
  const stream = await api("/api/streams/current/joined");
  streamId = stream.id;
  startedAt = stream.started_at ? new Date(stream.started_at) : new Date();
  renderViewers();
  show(startForm, false);
  show(codeForm, false);
  show($("stage"), true);
  setStatus(`You are live: ${stream.title}`);
  watchRoom();
}

function watchRoom() {
  // Once per page: going live again after End Stream reuses the same store and subscriptions.
  if (watching) return;
  watching = true;
  const { sdk, store, actions } = hms;
  store.subscribe((peer) => {
    if (peer && peer.videoTrack) actions.attachVideo(peer.videoTrack, $("preview"));
  }, sdk.selectLocalPeer);
  store.subscribe((peers) => renderPeers(peers || []), sdk.selectPeers);
  store.subscribe((on) => ($("toggle-audio").textContent = on ? "Mute" : "Unmute"), sdk.selectIsLocalAudioEnabled);
  store.subscribe((on) => ($("toggle-video").textContent = on ? "Camera off" : "Camera on"), sdk.selectIsLocalVideoEnabled);
  store.subscribe((devices) => renderDevices(devices), sdk.selectDevices);
  store.subscribe((connected) => {
    if (connected === false && startedAt) setStatus("Disconnected: reconnecting…");
  }, sdk.selectIsConnectedToRoom);
  setInterval(() => {
    if (startedAt) $("elapsed").textContent = formatElapsed((Date.now() - startedAt.getTime()) / 1000);
  }, 1000);
}

function renderPeers(peers) {
  const others = peers.filter((p) => !p.isLocal);
  sdkViewers = others.filter((p) => p.roleName !== config.broadcasterRole).length;
  renderViewers();
  $("participants").replaceChildren(
    ...others.map((p) => Object.assign(document.createElement("li"), { textContent: `${p.name} (${p.roleName})` })),
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

async function finish(message) {
  if (!startedAt) return; // not live on this page, or already finished
  startedAt = null;
  await hms.actions.leave();
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
    if (error.code === "room_code_required") {
      show(codeForm, true);
      setStatus("");
    }
    setProblem(error.message);
  } finally {
    if (button) button.disabled = false;
  }
}

startForm.addEventListener("submit", (event) => {
  const form = new FormData(startForm);
  details = { title: form.get("title"), description: form.get("description") || "" };
  start(event, "/api/streams", {});
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

$("toggle-audio").addEventListener("click", () => {
  hms.actions.setLocalAudioEnabled(!hms.store.getState(hms.sdk.selectIsLocalAudioEnabled));
});
$("toggle-video").addEventListener("click", () => {
  hms.actions.setLocalVideoEnabled(!hms.store.getState(hms.sdk.selectIsLocalVideoEnabled));
});
$("toggle-screen").addEventListener("click", async () => {
  try {
    const sharing = hms.store.getState(hms.sdk.selectIsLocalScreenShared);
    await hms.actions.setScreenShareEnabled(!sharing);
  } catch (error) {
    setProblem(`Screen sharing is not available: ${error.message}`);
  }
});
$("camera").addEventListener("change", (e) => hms.actions.setVideoSettings({ deviceId: e.target.value }));
$("microphone").addEventListener("change", (e) => hms.actions.setAudioSettings({ deviceId: e.target.value }));
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
window.addEventListener("beforeunload", () => hms && hms.actions.leave());
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
