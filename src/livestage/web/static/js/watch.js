import { api, pageConfig, show } from "./api.js";
import { connect } from "./hms.js";
import { follow } from "./live-updates.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);
let hms = null;
let ended = false;
// The viewer count is the server's (provider webhooks, authoritative); what the SDK sees in the
// room only raises it while a join has not been reported yet.
let serverViewers = null;
let sdkViewers = 0;

function renderViewers() {
  $("viewers").textContent = String(Math.max(serverViewers ?? 0, sdkViewers));
}

async function watch() {
  try {
    const join = await api(`/api/watch/${encodeURIComponent(config.handle)}/join`);
    if (ended) return;
    hms = await connect(config.sdkUrl);
    await hms.actions.join({
      userName: join.user_name,
      authToken: join.token,
      settings: { isAudioMuted: true, isVideoMuted: true },
    });
    if (ended) {
      await hms.actions.leave();
      return;
    }
    $("status").textContent = "Live";
    hms.store.subscribe((peers) => {
      if (ended) return;
      const list = peers || [];
      const host = list.find((p) => p.roleName === config.broadcasterRole);
      if (host && host.videoTrack) hms.actions.attachVideo(host.videoTrack, $("player"));
      $("status").textContent = host ? "Live" : "Waiting for the stream to start…";
      sdkViewers = list.filter((p) => p.roleName !== config.broadcasterRole).length;
      renderViewers();
    }, hms.sdk.selectPeers);
    window.addEventListener("beforeunload", () => hms.actions.leave());
  } catch (error) {
    if (ended) return;
    $("status").textContent = "";
    $("problem").textContent = error.message;
    show($("problem"), true);
  }
}

// The stream this page shows has ended: say so in place of the player, and leave the room.
async function showEnded() {
  if (ended) return;
  ended = true;
  $("status").textContent =
    `The stream “${config.title}” has ended. Follow @${config.handle} and come back for the next one.`;
  show($("problem"), false);
  $("player").remove();
  $("watching").remove();
  if (hms) await hms.actions.leave();
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
    if (!ended) renderViewers();
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

follow(config.handle, onServerUpdate);
if (config.live) watch();
