import { api, formatElapsed, pageConfig, show } from "./api.js";
import { startChat } from "./chat.js";
import { follow } from "./live-updates.js";
import { provider } from "./room.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);
const joinPath = `/api/watch/${encodeURIComponent(config.handle)}/join`;
let room = null;
let ended = false;
// The viewer count is the server's (provider events, authoritative); what the room shows this
// page only raises it while a join has not been reported yet.
let serverViewers = null;
let roomViewers = 0;
let startedAt = config.startedAt ? new Date(config.startedAt) : null;
let chat = null;
let elapsedTimer = null;
let hostPresent = false;

function renderViewers() {
  $("viewers").textContent = String(Math.max(serverViewers ?? 0, roomViewers));
}

function setStatus(text) {
  $("status").textContent = text;
}

// The name this viewer chose for the chat is the name the broadcaster sees them by.
function named(join) {
  const chatName = localStorage.getItem("livestage.chatName");
  return chatName ? { ...join, user_name: chatName } : join;
}

async function watch() {
  try {
    const join = named(await api(joinPath));
    if (ended) return;
    const rooms = await provider(join);
    room = await rooms.watch(join, {
      sdkUrl: config.sdkUrl,
      video: $("player"),
      broadcasterRole: config.broadcasterRole,
      refreshJoin: async () => named(await api(joinPath)),
      onPeers: (others) => {
        if (ended) return;
        // Distinct viewers, this one included: its own other tabs are not more viewers.
        const viewers = others.filter((p) => p.role !== config.broadcasterRole).map((p) => p.viewer);
        roomViewers = new Set([...viewers, join.user_id]).size;
        renderViewers();
      },
      onState: onRoomState,
    });
    if (ended) {
      await room.leave();
      return;
    }
    window.addEventListener("beforeunload", () => room && room.leave());
  } catch (error) {
    if (ended) return;
    if (error.code === "chat_banned" || error.code === "banned") showBanned(error.message);
    else if (error.code === "stream_full" || error.state === "full") showFull(error.message);
    else if (error.state === "ended") showEnded();
    else showProblem(error.message);
  }
}

function onRoomState(state, detail) {
  if (ended) return;
  if (state === "live" || state === "waiting") hostPresent = state === "live";
  if (state === "live") setStatus("Live");
  else if (state === "waiting") setStatus("Waiting for the stream to start…");
  else if (state === "reconnecting") setStatus("Connection lost: reconnecting…");
  else if (state === "reconnected") setStatus(hostPresent ? "Reconnected: live" : "Reconnected: waiting for the stream to start…");
  else if (state === "muted") show($("unmute"), true);
  else if (state === "ended") showEnded();
  else if (state === "full") showFull(detail);
  else if (state === "failed" && detail === "banned") showBanned();
  else if (state === "failed") showProblem(detail);
}

function showProblem(message) {
  setStatus("");
  $("problem").textContent = message;
  show($("problem"), true);
}

// The room has as many viewers as it takes: say so kindly, and offer to try again.
function showFull(message) {
  if (ended) return;
  ended = true;
  if (room) room.leave();
  setStatus("");
  $("player").remove();
  $("watching").remove();
  show($("unmute"), false);
  const again = Object.assign(document.createElement("button"), { type: "button", textContent: "Try again" });
  again.addEventListener("click", () => location.reload());
  $("full").replaceChildren(
    Object.assign(document.createElement("strong"), { textContent: "This stream is full. " }),
    message || "Every seat is taken right now. Try again in a moment.",
    " ",
    again,
  );
  show($("full"), true);
}

// The stream this page shows has ended: say so in place of the player, and leave the room.
async function showEnded() {
  if (ended) return;
  ended = true;
  const link = Object.assign(document.createElement("a"), { href: "/live", textContent: "who is live now" });
  $("status").replaceChildren(`The stream “${config.title}” has ended. See `, link, ".");
  await stopWatching();
}

// This viewer was banned by the stream's moderators: the video stops here, and the server
// refuses their joins from now on (any tab, any new token).
async function showBanned(message) {
  // Also after the page showed "ended": with 100ms, removal from the room can come first.
  $("status").textContent = message || "You are banned from this creator's streams.";
  if (ended) return;
  ended = true;
  await stopWatching();
}

async function stopWatching() {
  clearInterval(elapsedTimer);
  show($("problem"), false);
  show($("unmute"), false);
  $("player").remove();
  $("watching").remove();
  if (chat) chat.close();
  if (room) await room.leave();
}

function renderElapsed() {
  if (startedAt && !ended) $("elapsed").textContent = formatElapsed(Math.max(0, (Date.now() - startedAt.getTime()) / 1000));
}

function renderLive(update) {
  if (update.started_at) startedAt = new Date(update.started_at);
  if (update.status === "live") {
    $("live-badge").textContent = "LIVE";
    $("live-badge").classList.add("live");
  }
  renderElapsed();
}

// A new stream started while this page shows an older one (or nothing): offer it.
function offerNewStream(update) {
  const notice = $("went-live");
  const link = Object.assign(document.createElement("a"), {
    href: `/watch/${encodeURIComponent(config.handle)}`,
    textContent: "Watch now",
  });
  notice.replaceChildren(`@${config.handle} is live now: “${update.title}”. `, link);
  show(notice, true);
}

function onServerUpdate(update) {
  if (!update.stream_id) return; // the creator has never streamed
  if (update.stream_id === config.streamId) {
    if (!config.live) return;
    serverViewers = update.viewers;
    if (!ended) {
      renderViewers();
      renderLive(update);
    }
    if (update.status === "ended" || update.status === "failed") showEnded();
    return;
  }
  // Another stream. A creator has one active stream at most: if it is that one, ours is over
  // (late news of an older stream is not).
  if (update.status === "starting" || update.status === "live") {
    if (config.live) showEnded();
    offerNewStream(update);
  }
}

$("unmute")?.addEventListener("click", () => {
  $("player").muted = false;
  show($("unmute"), false);
});
follow(config.handle, onServerUpdate);
if (config.live) {
  elapsedTimer = setInterval(renderElapsed, 1000);
  renderElapsed();
  chat = startChat(config.handle, {
    onRestricted: (kind) => kind === "ban" && showBanned(),
  });
  watch();
}
