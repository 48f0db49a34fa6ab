// The reference token server from 100ms's docs ("Auth token: server-side generation", Node.js
// sample): Express + jsonwebtoken, one HS256 app token per request, nothing stored.
//
//   node bench/peers/token_server.js PORT
//
// Credentials come from HMS_ACCESS_KEY / HMS_APP_SECRET; the body names the room and role.
"use strict";

const express = require("express");
const jwt = require("jsonwebtoken");
const { v4: uuid4 } = require("uuid");

const accessKey = process.env.HMS_ACCESS_KEY || "bench-access-key";
const appSecret = process.env.HMS_APP_SECRET || "bench-app-secret-bench-app-secret";
const port = Number(process.argv[2] || 8900);

const app = express();
app.use(express.json());

app.get("/healthz", (_req, res) => res.json({ status: "ok" }));

app.post("/api/token", (req, res) => {
  const { room_id: roomId, role = "viewer", user_id: userId = uuid4() } = req.body || {};
  if (!roomId) {
    return res.status(400).json({ error: "room_id is required" });
  }
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    access_key: accessKey,
    room_id: roomId,
    user_id: userId,
    role,
    type: "app",
    version: 2,
    iat: now,
    nbf: now,
  };
  jwt.sign(payload, appSecret, { algorithm: "HS256", expiresIn: "24h", jwtid: uuid4() }, (err, token) => {
    if (err) {
      return res.status(500).json({ error: err.message });
    }
    res.json({ token });
  });
});

app.listen(port, "127.0.0.1");
