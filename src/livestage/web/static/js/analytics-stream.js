// Current viewers, peak and status of a stream's analytics page, pushed by the server while the
// stream is live; on an admin's page, the stream's chat with its moderation controls.
import { pageConfig } from "./api.js";
import { startChat } from "./chat.js";
import { follow } from "./live-updates.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);
const chat = $("chat") ? startChat(config.handle) : null;
const live = follow(config.handle, (update) => {
  if (update.stream_id !== config.streamId) return;
  $("stat-current").textContent = String(update.viewers);
  $("stat-peak").textContent = String(update.peak);
  const badge = $("stream-status").querySelector(".badge");
  badge.className = `badge ${update.status}`;
  badge.textContent = update.status;
  if (update.status === "ended" || update.status === "failed") {
    $("current-box").classList.add("hidden");
    $("ended-notice").classList.remove("hidden");
    live.close();
    if (chat) chat.close();
  }
});
