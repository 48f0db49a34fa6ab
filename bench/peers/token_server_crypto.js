// The same token server as token_server.js (Express, one HS256 app token per request, the same
// request and response), but signing with Node's own `crypto` HMAC instead of `jsonwebtoken`:
// what a Node developer who cares about speed would write. The fair peer for the viewer join.
//
//   node bench/peers/token_server_crypto.js PORT
//
// Credentials come from HMS_ACCESS_KEY / HMS_APP_SECRET; the body names the room and role.
"use strict";

const crypto = require("node:crypto");
const express = require("express");

const accessKey = process.env.HMS_ACCESS_KEY || "bench-access-key";
const appSecret = process.env.HMS_APP_SECRET || "bench-app-secret-bench-app-secret";
const port = Number(process.argv[2] || 8901);
const DAY_SECONDS = 24 * 60 * 60;

// The header never changes: encoded once, as jsonwebtoken's output has it.
const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");

function signHs256(payload) {
  const body = `${header}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
  const signature = crypto.createHmac("sha256", appSecret).update(body).digest("base64url");
  return `${body}.${signature}`;
}

const app = express();
app.use(express.json());

app.get("/healthz", (_req, res) => res.json({ status: "ok" }));

app.post("/api/token", (req, res) => {
  const { room_id: roomId, role = "viewer", user_id: userId = crypto.randomUUID() } = req.body || {};
  if (!roomId) {
    return res.status(400).json({ error: "room_id is required" });
  }
  const now = Math.floor(Date.now() / 1000);
  // The claims jsonwebtoken writes for the reference peer, in its order (expiresIn → exp,
  // jwtid → jti).
  const payload = {
    access_key: accessKey,
    room_id: roomId,
    user_id: userId,
    role,
    type: "app",
    version: 2,
    iat: now,
    nbf: now,
    exp: now + DAY_SECONDS,
    jti: crypto.randomUUID(),
  };
  res.json({ token: signHs256(payload) });
});

app.listen(port, "127.0.0.1");
