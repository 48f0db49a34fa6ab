"""The local provider's signalling WebSocket, `/ws/local/{room_id}`: the HTTP side of
`providers/local/signalling.py`'s hub (the lifespan wires the hub's events into tracking).

Protocol (JSON text frames). A connection authenticates first: `?token=` or, better (query
strings end up in access logs), a first message `{"type": "join", "token": "...", "name": "..."}`
within 10 s. The token must be one this server minted for this room (go-live or the viewer join
API), unexpired, for the broadcaster or viewer role; the room must have a starting or live local
stream. Then:

server → browser
  welcome      {peer_id, role, room_id, ice_servers, peers: [{peer_id, name, role, joined_at}]}
               (the broadcaster sees every viewer, a viewer sees only the broadcaster)
  peer-joined  {peer_id, name, role, joined_at}      peer-left {peer_id, reason}
  offer / answer {from, sdp}   ice {from, candidate}   request-offer {from}
  room-ended   {reason}, then close 1000             pong
  error        {code, message[, reason]}: a refused message; before a refusal's close too
browser → server
  offer {to, sdp} (broadcaster only; from a viewer: refused, close 4403)
  answer {to, sdp}, request-offer {to} (viewer → broadcaster)   ice {to, candidate}
  leave (recorded as "client request"; any other disconnect is "websocket closed")   ping

Close codes: 4401 no/bad/expired token or one for another room (the reason says which),
4403 forbidden (a viewer publishing, a second broadcaster, a disabled room, an unknown role),
4404 no live stream in this room, 4409 "stream is full" (viewer cap), 4410 the same broadcaster
connected again elsewhere (do not reconnect), 4429 too many messages, 1009 message too big,
1013 too slow to read, 1001 server shutting down, 1000 left or room ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import unicodedata
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket

from livestage.providers.local.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_NORMAL,
    CLOSE_NOT_LIVE,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    DROPPED,
    LEFT_CLEANLY,
    RELAYED,
    Close,
    Member,
    Refused,
    error,
    removed_user,
)
from livestage.providers.local.provider import SIGNAL_PATH, Hub, LocalProvider
from livestage.providers.local.tokens import TokenRefused
from livestage.streams.repository import StreamRepository
from livestage.web.deps import ProviderDep, ReadSessions
from livestage.web.metrics import SIGNALLING_CONNECTIONS

log = structlog.get_logger()
router = APIRouter(tags=["local provider"])

JOIN_TIMEOUT = 10.0
MAX_MESSAGE_CHARS = 64 * 1024
MAX_NAME_CHARS = 80
# Offers, answers and trickled ICE for a full room come in bursts of a few hundred messages.
RATE_PER_SECOND = 100.0
RATE_BURST = 400.0
WRITER_STOP_TIMEOUT = 5.0


@router.websocket(SIGNAL_PATH)
async def local_signalling(
    websocket: WebSocket, room_id: str, provider: ProviderDep, reads: ReadSessions
) -> None:
    await websocket.accept()
    if not isinstance(provider, LocalProvider):
        await _refuse(websocket, Refused(CLOSE_NOT_LIVE, "the local provider is not in use"))
        return
    hello = await _hello(websocket)
    if hello is None:
        return
    token, name = hello
    try:
        claims = provider.verify_join_token(token, room_id)
    except TokenRefused as refused:
        message = f"This link to the stream is not valid ({refused}). Reload the page."
        await _refuse(websocket, Refused(CLOSE_UNAUTHORIZED, str(refused), message))
        return
    if not provider.is_room_enabled(room_id):
        await _refuse(websocket, Refused(CLOSE_FORBIDDEN, "room is disabled"))
        return
    async with reads() as session:
        streams = StreamRepository(session)
        room_name = await streams.get_active_room_name(room_id, provider=LocalProvider.name)
        viewer = claims.role != provider.broadcaster_role
        banned = viewer and await streams.is_banned_in_room(room_id, claims.user_id)
    if room_name is None:
        refusal = Refused(CLOSE_NOT_LIVE, "stream is not live", "This stream is not live now.")
        await _refuse(websocket, refusal)
        return
    if banned:
        await _refuse(websocket, removed_user("You are banned from this creator's streams."))
        return
    member = Member.new(
        user_id=claims.user_id,
        role=claims.role,
        name=name or claims.role.title(),
        joined_at=provider.clock(),
    )
    try:
        await provider.hub.join(room_id, room_name, member)
    except Refused as refusal:
        await _refuse(websocket, refusal)
        return
    await _serve(websocket, provider.hub, member)


async def _hello(websocket: WebSocket) -> tuple[str, str | None] | None:
    """The token and display name, from the query string or the first message."""
    name = _clean_name(websocket.query_params.get("name"))
    if token := websocket.query_params.get("token"):
        return token, name
    missing = Refused(
        CLOSE_UNAUTHORIZED,
        "missing token",
        'Send {"type": "join", "token": "..."} first, with the token from the join API.',
    )
    try:
        raw = await asyncio.wait_for(websocket.receive(), JOIN_TIMEOUT)
    except TimeoutError:
        await _refuse(websocket, missing)
        return None
    if raw["type"] == "websocket.disconnect":
        return None
    message = _parse(raw.get("text"))
    token = message.get("token") if message and message.get("type") == "join" else None
    if not isinstance(token, str) or not token:
        await _refuse(websocket, missing)
        return None
    return token, _clean_name(message.get("name") if message else None) or name


async def _serve(websocket: WebSocket, hub: Hub, member: Member) -> None:
    writer = asyncio.create_task(_write(websocket, member))
    SIGNALLING_CONNECTIONS.inc()
    try:
        await _read(websocket, hub, member)
    finally:
        SIGNALLING_CONNECTIONS.dec()
        await hub.leave(member, DROPPED)
        member.close(CLOSE_NORMAL, "closed")
        try:
            await asyncio.wait_for(writer, WRITER_STOP_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            writer.cancel()


async def _write(websocket: WebSocket, member: Member) -> None:
    """Send the member's outbox in order; a `Close` ends it (and the connection)."""
    with contextlib.suppress(Exception):  # the browser may be gone: the reader notices
        while True:
            item = await member.outbox.get()
            if isinstance(item, Close):
                await websocket.close(item.code, _close_reason(item.reason))
                return
            await websocket.send_text(json.dumps(item, separators=(",", ":")))


async def _read(websocket: WebSocket, hub: Hub, member: Member) -> None:
    """Handle the browser's messages until it disconnects."""
    bucket = _Bucket(RATE_PER_SECOND, RATE_BURST)
    while True:
        raw = await websocket.receive()
        if raw["type"] == "websocket.disconnect":
            return
        if member.closed is not None:
            continue  # closing: wait for the browser's close reply
        text = raw.get("text")
        if len(text if text is not None else raw.get("bytes") or b"") > MAX_MESSAGE_CHARS:
            await hub.remove(member, Refused(CLOSE_TOO_BIG, "message too big"))
            continue
        if not bucket.take():
            await hub.remove(member, Refused(CLOSE_RATE_LIMITED, "too many messages"))
            continue
        message = _parse(text)
        if message is None:
            member.send(error("bad_message", "messages are JSON objects with a string 'type'"))
            continue
        kind = message["type"]
        if kind in RELAYED:
            try:
                await hub.relay(member, message)
            except Refused as refusal:
                await hub.remove(member, refusal)
        elif kind == "leave":
            await hub.leave(member, LEFT_CLEANLY)
            member.close(CLOSE_NORMAL, "left")
        elif kind == "ping":
            member.send({"type": "pong"})
        elif kind == "join":
            member.send(error("bad_message", "already joined"))
        else:
            member.send(error("unknown_type", f"unknown message type {kind[:40]!r}"))


async def _refuse(websocket: WebSocket, refusal: Refused) -> None:
    log.info("local.refused", code=refusal.code, reason=refusal.reason)
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(refusal.error_message()))
        await websocket.close(refusal.code, _close_reason(refusal.reason))


def _parse(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


def _clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    printable = "".join(c for c in value if unicodedata.category(c)[0] != "C")
    return " ".join(printable.split())[:MAX_NAME_CHARS] or None


def _close_reason(reason: str) -> str:
    """A close frame carries at most 123 bytes of reason."""
    return reason.encode()[:123].decode(errors="ignore")


class _Bucket:
    """A token bucket: `rate` messages a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
