import { api, pageConfig, show } from "./api.js";
import { connect } from "./hms.js";

const config = pageConfig();
const $ = (id) => document.getElementById(id);

async function watch() {
  try {
    const join = await api(`/api/watch/${encodeURIComponent(config.handle)}/join`);
    const hms = await connect(config.sdkUrl);
    await hms.actions.join({
      userName: join.user_name,
      authToken: join.token,
      settings: { isAudioMuted: true, isVideoMuted: true },
    });
    $("status").textContent = "Live";
    hms.store.subscribe((peers) => {
      const list = peers || [];
      const host = list.find((p) => p.roleName === config.broadcasterRole);
      if (host && host.videoTrack) hms.actions.attachVideo(host.videoTrack, $("player"));
      $("status").textContent = host ? "Live" : "Waiting for the stream to start…";
      $("viewers").textContent = String(list.filter((p) => p.roleName !== config.broadcasterRole).length);
    }, hms.sdk.selectPeers);
    window.addEventListener("beforeunload", () => hms.actions.leave());
  } catch (error) {
    $("status").textContent = "";
    $("problem").textContent = error.message;
    show($("problem"), true);
  }
}

watch();
