"""Python floors for the viewer join: the least a Python server can do for the same request.

Two bare ASGI apps (no framework, nothing of livestage imported), served by uvicorn exactly as
`livestage serve` serves livestage (one worker, uvloop and httptools, the same log level and
access log, the same garbage-collector threshold, no proxy headers, the same server core):

- `bare`: answers `POST /api/watch/{handle}/join` with the join's JSON, the handle's room looked
  up in a dict, no token minted (a constant in its place, as long as a real one);
- `pyjwt`: the same, and mints the same viewer token (claims, header, TTL, skew) with PyJWT,
  the HMAC key prepared once as livestage does (the fastest PyJWT path: `jwt.encode` re-checks
  the key on every call and costs about 1.6× as much).

Neither checks CSRF, sets the viewer cookie or records the join: that is livestage's own work,
which the ratio join ÷ floor measures.

    python -m bench.floors {bare|pyjwt} PORT ROOMS_JSON   (credentials: HMS_ACCESS_KEY, ...)
"""

from __future__ import annotations

import gc
import json
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

TOKEN_TTL_SECONDS = 4 * 3600  # LIVESTAGE_HMS_AUTH_TOKEN_TTL_SECONDS' default
CLOCK_SKEW_SECONDS = 10
JSON_HEADERS = [(b"content-type", b"application/json")]
NOT_FOUND = b'{"detail":"Not Found"}'


class _PreparedKey(HMACAlgorithm):
    def __init__(self, key: str) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._key = super().prepare_key(key)

    def prepare_key(self, key: str | bytes) -> bytes:
        return self._key


def token_minter(access_key: str, app_secret: str) -> Callable[[str, str], str]:
    """(room_id, user_id) → the viewer token livestage mints for them (PyJWT's JWS)."""
    jws = PyJWS(algorithms=["HS256"])
    jws.unregister_algorithm("HS256")
    jws.register_algorithm("HS256", _PreparedKey(app_secret))

    def mint(room_id: str, user_id: str) -> str:
        issued = int(time.time()) - CLOCK_SKEW_SECONDS
        claims = {
            "access_key": access_key,
            "type": "app",
            "version": 2,
            "room_id": room_id,
            "role": "viewer",
            "user_id": user_id,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_TTL_SECONDS,
        }
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.encode(payload, app_secret, algorithm="HS256", headers={"typ": "JWT"})

    return mint


def join_body(room_id: str, user_id: str, token: str) -> bytes:
    """The join's JSON, key for key (`JoinInfo` for the 100ms provider)."""
    body = {
        "kind": "token",
        "role": "viewer",
        "room_id": room_id,
        "user_id": user_id,
        "user_name": "Viewer",
        "token": token,
        "room_code": None,
        "token_endpoint": None,
        "provider": "hms",
        "signal_url": None,
        "ice_servers": [],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def create_app(kind: str, rooms: dict[str, str], access_key: str, app_secret: str) -> Any:
    mint = token_minter(access_key, app_secret)
    if kind == "bare":
        # A token's length, so both floors send as many bytes as the join does.
        placeholder = mint("0" * 24, "viewer-" + "0" * 16)
        mint = lambda room_id, user_id: placeholder  # noqa: E731

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope["path"]
        status, body = 404, NOT_FOUND
        if scope["method"] == "POST" and path.startswith("/api/watch/"):
            await receive()  # the (empty) body
            room_id = rooms.get(path[len("/api/watch/") : -len("/join")])
            if room_id is not None and path.endswith("/join"):
                user_id = f"viewer-{secrets.token_hex(8)}"
                status, body = 200, join_body(room_id, user_id, mint(room_id, user_id))
        elif path == "/healthz":
            status, body = 200, b'{"status":"ok"}'
        await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": body})

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    import uvicorn

    kind, port, rooms_file = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    app = create_app(
        kind,
        json.loads(rooms_file.read_text()),
        os.environ["HMS_ACCESS_KEY"],
        os.environ["HMS_APP_SECRET"],
    )
    level = os.environ.get("LIVESTAGE_LOG_LEVEL", "WARNING").upper()
    # As livestage serve sets it (src/livestage/app.py, GC_YOUNG_THRESHOLD).
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    # livestage serve's call (src/livestage/cli.py) with the defaults it runs with; as there,
    # uvicorn's access log is off above INFO.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        proxy_headers=False,
        forwarded_allow_ips=None,
        timeout_graceful_shutdown=5,
        log_level=level.lower(),
        access_log=logging.getLevelNamesMapping()[level] <= logging.INFO,
    )


if __name__ == "__main__":
    main()
