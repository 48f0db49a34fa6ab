// 100ms's own Node server SDK (@100mslive/server-sdk, vendor/package.json) against the emulator:
// every endpoint livestage calls and every endpoint the emulator implements, through the SDK's
// wrappers where it has one and its generic `sdk.api` otherwise (templates, webhook history).
//
// Run by tests/contract/test_hms_server_sdk.py with NODE_PATH at vendor/node_modules and
//   HMS_ACCESS_KEY, HMS_SECRET   the emulator's credentials (read by the SDK itself)
//   EMULATOR_URL                 the emulator's base URL (its /v2, /auth and /_emulator)
//   IDLE_STOP_SECONDS            the emulator's hls_idle_stop_seconds
// Prints one JSON line per check: {check, call, ok, detail}. Exits 0 even when checks fail:
// the Python test reads the lines and names what failed.
"use strict";

const jwt = require("jsonwebtoken");
const sdkModule = require("@100mslive/server-sdk");

const HMSSDK = sdkModule.SDK;
const BASE = process.env.EMULATOR_URL;
const IDLE_SECONDS = Number(process.env.IDLE_STOP_SECONDS);
const OBJECT_ID = /^[0-9a-f]{24}$/;
const ROOM_CODE = /^[a-z]{3}-[a-z]{3,4}-[a-z]{3}$/;
const run = Date.now().toString(36);

// The SDK hard-codes 100ms's base URL; an instance is aimed elsewhere through its axios.
function aim(sdk) {
  sdk.api.axios.defaults.baseURL = `${BASE}/v2`;
  return sdk;
}
const hms = aim(new HMSSDK());

const results = [];
async function check(name, call, body) {
  let ok = false;
  let detail = "";
  try {
    const outcome = await body();
    ok = outcome === undefined || outcome === true;
    if (!ok) detail = String(outcome);
  } catch (error) {
    detail = `${error.name || "Error"}: ${error.message}${error.code ? ` (code ${error.code})` : ""}`;
  }
  results.push({ check: name, call, ok, detail });
  process.stdout.write(JSON.stringify({ check: name, call, ok, detail }) + "\n");
}

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

async function refused(promise, status, message) {
  try {
    await promise;
  } catch (error) {
    expect(error.code === status, `HTTP ${status}, got ${error.code} ${error.message}`);
    if (message) expect(error.message === message, `message "${message}", got "${error.message}"`);
    return;
  }
  throw new Error(`expected HTTP ${status}, the call succeeded`);
}

async function all(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function control(method, path, body) {
  const response = await fetch(`${BASE}/_emulator${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`control ${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const join = (roomId, body) => control("POST", `/rooms/${roomId}/peers`, body);
const leave = (roomId, peerId) => control("DELETE", `/rooms/${roomId}/peers/${peerId}`);
const events = async (type) => (await control("GET", "/events")).data.filter((e) => e.type === type);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what, probe, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function main() {
  const state = {};

  // Tokens --------------------------------------------------------------------------------
  await check("management token", "auth.getManagementToken()", async () => {
    const { token } = await hms.auth.getManagementToken();
    const claims = jwt.verify(token, process.env.HMS_SECRET, { algorithms: ["HS256"] });
    expect(claims.type === "management" && claims.version === 2, "type management, version 2");
    expect(claims.access_key === process.env.HMS_ACCESS_KEY, "the access key");
    expect(typeof claims.jti === "string" && claims.iat === claims.nbf, "jti, iat = nbf");
    expect(claims.iat <= Math.floor(Date.now() / 1000) - 9, "iat back-dated 10 s");
  });
  await check("a wrong secret is refused", "rooms.list() with another secret", async () => {
    const stranger = aim(new HMSSDK(process.env.HMS_ACCESS_KEY, `${process.env.HMS_SECRET}x`));
    await refused(all(stranger.rooms.list()), 401, "Token validation error");
  });

  // Rooms ---------------------------------------------------------------------------------
  await check("create a room", "rooms.create({name, description})", async () => {
    const room = await hms.rooms.create({ name: `sdk-${run}`, description: "contract" });
    expect(OBJECT_ID.test(room.id) && room.enabled === true, "a 24-hex id, enabled");
    expect(room.name === `sdk-${run}` && room.description === "contract", "name and description");
    expect(room.created_at instanceof Date, "created_at cast to a Date by the SDK");
    state.room = room;
  });
  await check("create is an upsert by name", "rooms.create({name}) again", async () => {
    const again = await hms.rooms.create({ name: `SDK-${run}` });
    expect(again.id === state.room.id, "the same room (names match case-insensitively)");
  });
  await check("retrieve a room by id", "rooms.retrieveById(id)", async () => {
    expect((await hms.rooms.retrieveById(state.room.id)).name === `sdk-${run}`, "the room");
  });
  await check("retrieve a room by name", "rooms.retrieveByName(name)", async () => {
    expect((await hms.rooms.retrieveByName(`sdk-${run}`)).id === state.room.id, "the room");
  });
  await check("update a room", "rooms.update(id, {description})", async () => {
    const room = await hms.rooms.update(state.room.id, { description: "updated" });
    expect(room.description === "updated", "the new description");
  });
  await check("disable and enable a room", "rooms.enableOrDisable(id, false|true)", async () => {
    expect((await hms.rooms.enableOrDisable(state.room.id, false)).enabled === false, "disabled");
    expect((await hms.rooms.enableOrDisable(state.room.id, true)).enabled === true, "enabled");
  });
  await check("list rooms across pages", "rooms.list({limit: 10})", async () => {
    for (let i = 0; i < 11; i += 1) await hms.rooms.create({ name: `sdk-${run}-page-${i}` });
    const listed = await all(hms.rooms.list({ limit: 10 }));
    const ids = new Set(listed.map((room) => room.id));
    expect(ids.size === listed.length, "no room twice");
    expect(listed.filter((room) => room.name.startsWith(`sdk-${run}`)).length === 12, "all 12 rooms");
  });
  await check("an unknown room is a 404", "rooms.retrieveById(unknown)", async () => {
    await refused(hms.rooms.retrieveById("0".repeat(24)), 404);
  });

  // Room codes and the auth host -------------------------------------------------------
  await check("create room codes", "roomCodes.create(roomId)", async () => {
    const codes = await hms.roomCodes.create(state.room.id);
    expect(codes.length >= 2 && codes.every((c) => ROOM_CODE.test(c.code)), "a code per role");
    state.codes = Object.fromEntries(codes.map((c) => [c.role, c.code]));
    expect(state.codes.broadcaster && state.codes.viewer, "broadcaster and viewer codes");
  });
  await check("create a code for a role", "roomCodes.createForRole(roomId, 'viewer')", async () => {
    const code = await hms.roomCodes.createForRole(state.room.id, "viewer");
    expect(code.role === "viewer" && ROOM_CODE.test(code.code), "a viewer code");
  });
  await check("list room codes", "roomCodes.list(roomId)", async () => {
    const codes = await all(hms.roomCodes.list(state.room.id));
    expect(codes.some((c) => c.code === state.codes.broadcaster), "the broadcaster code");
  });
  await check("disable and enable a code", "roomCodes.enableOrDisable(code, false|true)", async () => {
    const off = await hms.roomCodes.enableOrDisable(state.codes.viewer, false);
    expect(off.enabled === false, "disabled");
    const exchange = await fetch(`${BASE}/auth/v2/token`, {
      method: "POST",
      body: JSON.stringify({ code: state.codes.viewer }),
    });
    expect(exchange.status === 403, `a disabled code refused with 403, got ${exchange.status}`);
    expect((await hms.roomCodes.enableOrDisable(state.codes.viewer, true)).enabled, "enabled");
  });
  await check("exchange a code (auth host)", "POST /auth/v2/token {code, user_id}", async () => {
    const response = await fetch(`${BASE}/auth/v2/token`, {
      method: "POST",
      body: JSON.stringify({ code: state.codes.broadcaster, user_id: "sdk-user" }),
    });
    const { token } = await response.json();
    const claims = jwt.verify(token, process.env.HMS_SECRET, { algorithms: ["HS256"] });
    expect(claims.type === "app" && claims.role === "broadcaster", "a broadcaster app token");
    expect(claims.room_id === state.room.id && claims.user_id === "sdk-user", "room and user");
    expect(claims.iat === claims.nbf && claims.iat <= Math.floor(Date.now() / 1000) - 9, "back-dated");
  });

  // Templates: the SDK has no wrapper; its generic API client ----------------------------
  await check("create a template", "api.post('/templates', {name, roles})", async () => {
    const template = await hms.api.post("/templates", {
      name: `sdk-template-${run}`,
      roles: { host: { name: "host", publishParams: { allowed: ["audio", "video"] } } },
    });
    expect(OBJECT_ID.test(template.id) && template.roles.host, "an id and the role");
    expect(template.customer === template.customerId && template.customer, "customer = customerId");
    expect(typeof template.appId === "string" && template.appId.length > 0, "appId");
    state.template = template;
  });
  await check("retrieve a template", "api.get('/templates/{id}')", async () => {
    const template = await hms.api.get(`/templates/${state.template.id}`);
    expect(template.name === `sdk-template-${run}` && template.appId === state.template.appId, "it");
  });
  await check("update a template", "api.post('/templates/{id}', {settings})", async () => {
    const template = await hms.api.post(`/templates/${state.template.id}`, { settings: { region: "eu" } });
    expect(template.settings.region === "eu", "the new settings");
  });
  await check("list templates", "api.get('/templates')", async () => {
    const page = await hms.api.get("/templates", { limit: 100 });
    expect(page.data.some((t) => t.id === state.template.id), "the template");
    expect(page.data.every((t) => t.customer && t.appId), "customer and appId on every template");
  });

  // Active rooms -------------------------------------------------------------------------
  await check("join with an SDK-minted auth token", "auth.getAuthToken({roomId, role, userId})", async () => {
    const { token } = await hms.auth.getAuthToken({ roomId: state.room.id, role: "broadcaster", userId: "host-1" });
    state.host = await join(state.room.id, { token, name: "Host" });
    expect(state.host.role === "broadcaster" && state.host.user_id === "host-1", "the emulator took it");
    state.viewer = await join(state.room.id, { role: "viewer", user_id: "viewer-1", name: "Vee" });
  });
  await check("retrieve the active room", "activeRooms.retrieve(roomId)", async () => {
    const active = await hms.activeRooms.retrieve(state.room.id);
    expect(active.id === state.room.id && active.session.peers.length === 2, "its session, 2 peers");
    state.sessionId = active.session.id;
  });
  await check("list active peers", "activeRooms.retrieveActivePeers(roomId)", async () => {
    const peers = await hms.activeRooms.retrieveActivePeers(state.room.id);
    expect(peers[state.host.id].role === "broadcaster" && peers[state.viewer.id].name === "Vee", "both");
  });
  await check("retrieve a peer with tracks", "activeRooms.retrievePeerDetails(roomId, peerId)", async () => {
    const peer = await hms.activeRooms.retrievePeerDetails(state.room.id, state.host.id);
    const kinds = Object.values(peer.tracks).map((t) => t.type).sort();
    expect(kinds.join() === "audio,video", `audio and video tracks, got ${kinds}`);
  });
  await check("update a peer", "activeRooms.updatePeer(roomId, peerId, {name, metadata})", async () => {
    const peer = await hms.activeRooms.updatePeer(state.room.id, state.viewer.id, { name: "Vee V.", metadata: "{\"seat\":3}" });
    expect(peer.name === "Vee V." && peer.metadata === "{\"seat\":3}" && peer.role === "viewer", "updated");
  });
  await check("send a message", "activeRooms.sendMessage(roomId, {message})", async () => {
    await hms.activeRooms.sendMessage(state.room.id, { message: "hello", type: "chat" });
  });
  await check("remove a peer", "activeRooms.removePeer(roomId, {peer_id, reason})", async () => {
    await hms.activeRooms.removePeer(state.room.id, { peer_id: state.viewer.id, reason: "bye" });
    const left = (await events("peer.leave.success")).find((e) => e.data.peer_id === state.viewer.id);
    expect(left && left.data.reason === "peer kicked" && left.data.message === "bye", "peer kicked, bye");
  });
  await check("an idle room has no active room", "activeRooms.retrieve(idle room)", async () => {
    const idle = await hms.rooms.create({ name: `sdk-${run}-idle` });
    await refused(hms.activeRooms.retrieve(idle.id), 404);
  });

  // Sessions -----------------------------------------------------------------------------
  await check("the active session of a room", "sessions.retrieveActiveByRoom(roomId)", async () => {
    const session = await hms.sessions.retrieveActiveByRoom(state.room.id);
    expect(session.id === state.sessionId && session.active === true, "the active session");
    const peers = Object.values(session.peers);
    expect(peers.length === 2 && peers.every((p) => "left_at" in p), "left_at on every peer");
    // The SDK casts only top-level *_at fields: a peer's stay strings.
    expect(session.peers[state.host.id].left_at === "0001-01-01T00:00:00Z", "Go's zero time while connected");
    const left = new Date(session.peers[state.viewer.id].left_at);
    expect(left.getUTCFullYear() > 2000, "the removed peer's left_at");
  });
  await check("retrieve a session", "sessions.retrieveById(sessionId)", async () => {
    expect((await hms.sessions.retrieveById(state.sessionId)).room_id === state.room.id, "it");
  });
  await check("list a room's sessions", "sessions.list({room_id})", async () => {
    const sessions = await all(hms.sessions.list({ room_id: state.room.id }));
    expect(sessions.length === 1 && sessions[0].id === state.sessionId, "the one session");
  });

  // Live streams -------------------------------------------------------------------------
  const meeting_url = "https://livestage.example/beam";
  await check("start HLS", "liveStreams.start(roomId, {meeting_url, recording})", async () => {
    const stream = await hms.liveStreams.start(state.room.id, { meeting_url, recording: { hls_vod: true } });
    expect(OBJECT_ID.test(stream.id) && stream.status === "starting", "starting");
    expect(stream.playback.url.endsWith(".m3u8") && stream.meeting_url === meeting_url, "playback, meeting_url");
    state.stream = stream;
  });
  await check("a second start conflicts", "liveStreams.start(roomId) again", async () => {
    await refused(hms.liveStreams.start(state.room.id, { meeting_url }), 409, "beam already started");
  });
  await check("retrieve a running stream", "liveStreams.retrieve(streamId)", async () => {
    await until("running", async () => (await hms.liveStreams.retrieve(state.stream.id)).status === "running");
  });
  await check("list live streams", "liveStreams.list({room_id})", async () => {
    const streams = await all(hms.liveStreams.list({ room_id: state.room.id }));
    expect(streams.some((s) => s.id === state.stream.id), "the stream");
  });
  await check("timed metadata", "liveStreams.sendTimedMetadata(streamId, {payload, duration})", async () => {
    const stream = await hms.liveStreams.sendTimedMetadata(state.stream.id, { payload: "poll:1", duration: 5 });
    expect(stream.id === state.stream.id, "the stream");
    const playlist = await (await fetch(state.stream.playback.url)).text();
    expect(playlist.includes('X-100MSLIVE-PAYLOAD="poll:1"'), "the payload in the playlist");
  });
  await check("pause and resume recording", "liveStreams.pauseRecording / resumeRecording(streamId)", async () => {
    expect((await hms.liveStreams.pauseRecording(state.stream.id)).id === state.stream.id, "paused");
    expect((await hms.liveStreams.resumeRecording(state.stream.id)).status === "running", "resumed");
  });
  await check("stop one stream", "liveStreams.stop(streamId)", async () => {
    expect((await hms.liveStreams.stop(state.stream.id)).status === "stopping", "stopping");
    const stopped = await until("hls.stopped.success", async () =>
      (await events("hls.stopped.success")).find((e) => e.data.beam_id === state.stream.id));
    expect(stopped.data.reason === "client request", `reason client request, got ${stopped.data.reason}`);
  });
  await check("stop all of a room's streams", "liveStreams.stopAll(roomId)", async () => {
    await until("completed", async () => (await hms.liveStreams.retrieve(state.stream.id)).status === "completed");
    const again = await hms.liveStreams.start(state.room.id, { meeting_url });
    const stopped = await hms.liveStreams.stopAll(state.room.id);
    expect(stopped.length === 1 && stopped[0].id === again.id && stopped[0].status === "stopping", "it");
  });
  await check("end the room", "activeRooms.end(roomId, {reason, lock: false})", async () => {
    await until("stopped", async () => (await hms.liveStreams.retrieve(state.stream.id)).status === "completed");
    await sleep(200);
    const stream = await hms.liveStreams.start(state.room.id, { meeting_url });
    await hms.activeRooms.end(state.room.id, { reason: "show over", lock: false });
    const stopped = await until("hls.stopped.success", async () =>
      (await events("hls.stopped.success")).find((e) => e.data.beam_id === stream.id));
    expect(stopped.data.reason === "client request", `reason client request, got ${stopped.data.reason}`);
    await refused(hms.activeRooms.retrieve(state.room.id), 404);
  });
  await check("an emptied room's stream stops later", "liveStreams.retrieve after the last peer left", async () => {
    const room = await hms.rooms.create({ name: `sdk-${run}-alone` });
    const host = await join(room.id, { role: "broadcaster", user_id: "alone" });
    const stream = await hms.liveStreams.start(room.id, { meeting_url });
    await until("running", async () => (await hms.liveStreams.retrieve(stream.id)).status === "running");
    await leave(room.id, host.id);
    expect((await hms.liveStreams.retrieve(stream.id)).status === "running", "still running at once");
    await sleep(IDLE_SECONDS * 1000 + 300);
    const stopped = await until("hls.stopped.success", async () =>
      (await events("hls.stopped.success")).find((e) => e.data.beam_id === stream.id));
    expect(stopped.data.reason === "last peer left", `reason last peer left, got ${stopped.data.reason}`);
  });

  // Webhook history (no wrapper in the SDK) ------------------------------------------------
  await check("webhook history", "api.get('/analytics/webhooks', {start_time, end_time, room_id})", async () => {
    const page = await hms.api.get("/analytics/webhooks", {
      start_time: "2000-01-01T00:00:00Z",
      end_time: "2100-01-01T00:00:00Z",
      room_id: state.room.id,
      limit: 100,
    });
    expect(Array.isArray(page.data) && page.data.length > 0, "the room's events");
  });
  await check("webhook replay", "api.post('/analytics/webhooks/replay', {...})", async () => {
    const reply = await hms.api.post("/analytics/webhooks/replay", {
      start_time: "2000-01-01T00:00:00Z",
      end_time: "2100-01-01T00:00:00Z",
      room_id: state.room.id,
      status: "all",
    });
    expect(typeof (reply.workflow_id || reply.id) === "string", `a workflow id, got ${JSON.stringify(reply)}`);
  });
}

main().then(
  () => process.stdout.write(JSON.stringify({ done: results.length }) + "\n"),
  (error) => {
    process.stdout.write(JSON.stringify({ crashed: String(error && error.stack) }) + "\n");
    process.exitCode = 1;
  },
);
