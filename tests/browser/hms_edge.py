"""100ms's edge for the REAL browser SDK, at the page's network boundary.

The SDK livestage serves (`@100mslive/hms-video-store`, bundled by `make deps`) joins a room in
two steps this machine cannot take to 100ms: `GET https://prod-init.100ms.live/init` (with the
auth token), then a JSON-RPC WebSocket to the signalling endpoint the init answer names. Both are
answered here, through Playwright routes, so the SDK runs unmodified:

- init: recorded (URL, Authorization) and answered with an endpoint under `wss://*.100ms.live`
  (which the page's Content-Security-Policy allows, as in production);
- signalling: the room's policy (`on-policy-change`, the role as the emulator's template defines
  it, with 100ms's default publish settings where the template leaves them out), then `join` and
  `offer` answered with real SDP answers from an RTCPeerConnection in a second blank page (the
  "SFU"), the SDK's `trickle` candidates handed to it, `ping` answered. ICE between the two
  connects over loopback, so the SDK's connection is a real WebRTC one without any media server.

What this cannot stand in for: media from 100ms (remote peers' tracks, HLS), which the fake SDK
(fake_hms_sdk.js) keeps covering.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from playwright.async_api import Browser, Page, Route, WebSocketRoute

from tests.support.browser import isolated_page

INIT_ORIGIN = "https://prod-init.100ms.live"
SIGNAL_ENDPOINT = "wss://prod-in2.100ms.live/v2/ws"
# What 100ms templates carry for each role (docs: Templates and roles) and the emulator's
# template leaves out; the SDK reads them to capture local tracks.
DEFAULT_PUBLISH = {
    "audio": {"bitRate": 32, "codec": "opus"},
    "video": {"bitRate": 300, "codec": "vp8", "frameRate": 30, "width": 640, "height": 360},
    "screen": {"bitRate": 1000, "codec": "vp8", "frameRate": 10, "width": 1920, "height": 1080},
}

ANSWERER = """
window.pcs = {};
window.answer = async (key, offer) => {
  let pc = window.pcs[key];
  if (!pc) pc = window.pcs[key] = new RTCPeerConnection();
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    const gathered = () => pc.iceGatheringState === "complete" && done();
    pc.addEventListener("icegatheringstatechange", gathered);
    setTimeout(done, 2000);
  });
  return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
};
window.addCandidate = async (key, candidate) => {
  const pc = window.pcs[key];
  if (pc && candidate) await pc.addIceCandidate(candidate).catch(() => {});
};
"""


@dataclass
class InitRequest:
    url: str
    authorization: str

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


@dataclass
class Socket:
    route: WebSocketRoute
    number: int
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.route.url).query).items()}

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("method") == method]


class HmsEdge:
    """100ms's init endpoint and one SFU's signalling for the pages attached to it."""

    def __init__(self, answerer: Page, roles: dict[str, dict[str, Any]], template_id: str) -> None:
        self.answerer = answerer
        self.roles = {name: with_publish_defaults(role) for name, role in roles.items()}
        self.template_id = template_id
        self.inits: list[InitRequest] = []
        self.sockets: list[Socket] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def attach(self, page: Page) -> None:
        await page.route(f"{INIT_ORIGIN}/init**", self._on_init)
        await page.route_web_socket(f"{SIGNAL_ENDPOINT}**", self._on_socket)

    async def _on_init(self, route: Route) -> None:
        request = route.request
        self.inits.append(
            InitRequest(request.url, await request.header_value("authorization") or "")
        )
        config = {
            "endpoint": SIGNAL_ENDPOINT,
            "log_level": "INFO",
            "policy": "",
            "rtcConfiguration": {"ice_servers": []},
            "config": {
                "enabledFlags": [],
                "networkHealth": {"url": "", "timeout": 0, "scoreMap": {}},
            },
        }
        await route.fulfill(
            status=200,
            content_type="application/json",
            headers={"access-control-allow-origin": "*"},
            body=json.dumps(config),
        )

    def _on_socket(self, route: WebSocketRoute) -> None:
        socket = Socket(route, len(self.sockets) + 1)
        self.sockets.append(socket)
        route.on_message(lambda message: self._spawn(self._on_message(socket, message)))

    def _send_policy(self, socket: Socket) -> None:
        role = _role_of(socket.query.get("token", ""))
        policy = {"name": role, "known_roles": self.roles, "template_id": self.template_id}
        socket.route.send(json.dumps({"method": "on-policy-change", "params": policy}))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_message(self, socket: Socket, raw: str | bytes) -> None:
        message = json.loads(raw)
        # The policy goes out once the page's socket is surely open: on the SDK's first message
        # (its ping, sent as the socket opens). Sent from the connection handler, before the
        # page saw `open`, the SDK took it too early and never sent its join.
        if not socket.received:
            self._send_policy(socket)
        socket.received.append(message)
        method, params, call_id = (
            message.get("method"),
            message.get("params") or {},
            message.get("id"),
        )
        key = f"{socket.number}-publish"
        if method == "trickle":
            await self.answerer.evaluate(
                "([k, c]) => addCandidate(k, c)", [key, params.get("candidate")]
            )
            return
        if call_id is None:
            return
        result: dict[str, Any] = {}
        if method == "join" and params.get("offer"):
            result = await self._answer(key, params["offer"])
        elif method == "offer":
            result = await self._answer(key, params["desc"])
        elif method == "ping":
            result = {"timestamp": params.get("timestamp")}
        socket.route.send(
            json.dumps({"jsonrpc": "2.0", "id": call_id, "result": result or {"ok": True}})
        )

    async def _answer(self, key: str, offer: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self.answerer.evaluate(
            "([k, o]) => answer(k, o)", [key, offer]
        )
        return answer

    async def connected(self, socket: Socket) -> bool:
        """Whether the SDK's publish connection of this socket reached the "SFU" (ICE and DTLS
        over loopback)."""
        state = await self.answerer.evaluate(
            "(k) => window.pcs[k] && window.pcs[k].connectionState", f"{socket.number}-publish"
        )
        return bool(state == "connected")

    async def drop(self, socket: Socket) -> None:
        """The signalling connection breaks (the SDK sees an abnormal close)."""
        await socket.route.close(code=4000, reason="edge restarted")

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def with_publish_defaults(role: dict[str, Any]) -> dict[str, Any]:
    publish = {**DEFAULT_PUBLISH, **role.get("publishParams", {})}
    subscribe = {"subscribeToRoles": [], "maxSubsBitRate": 3200, **role.get("subscribeParams", {})}
    return {
        "priority": 1,
        "permissions": {},
        **role,
        "publishParams": publish,
        "subscribeParams": subscribe,
    }


def _role_of(token: str) -> str:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return str(claims.get("role", ""))


@asynccontextmanager
async def hms_edge(
    browser: Browser, roles: dict[str, dict[str, Any]], template_id: str, origin: str
) -> AsyncIterator[HmsEdge]:
    """`origin`: a loopback HTTP URL for the "SFU" page. There it is a secure context and, with a
    (fake) microphone granted, Chrome gives its ICE candidates as addresses, not mDNS names
    nothing in the sandbox resolves."""
    async with isolated_page(browser) as answerer:
        await answerer.goto(origin)
        await answerer.evaluate(
            "() => navigator.mediaDevices.getUserMedia({ audio: true }).then(() => true)"
        )
        await answerer.evaluate(f"() => {{ {ANSWERER} }}")
        edge = HmsEdge(answerer, roles, template_id)
        try:
            yield edge
        finally:
            await edge.aclose()
