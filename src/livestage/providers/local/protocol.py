"""The local provider's signalling protocol: what both hubs share (the one-process hub in
`signalling.py` and the cluster hub in `cluster.py`).

A `Member` is one connected browser, with an outbox the WebSocket endpoint drains; `Refused` is a
join or message the hub will not accept (the close code, a short reason, a message for the
person). The functions are the rules (roles, relaying), the messages browsers get, and the
100ms-shaped lifecycle envelopes (`session.open.success`, `peer.join.success`, ...) the
`EventOutbox` hands, in order, to the app's provider-event inbox, so tracking treats them exactly
like 100ms webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from livestage.kit.time import as_utc

log = structlog.get_logger()

EventSink = Callable[[dict[str, Any]], Awaitable[None]]

# Close codes (4000-4999 are the application's).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_LIVE = 4404
CLOSE_FULL = 4409
CLOSE_REPLACED = 4410
CLOSE_RATE_LIMITED = 4429

# Leave reasons, as 100ms words them where 100ms has one.
LEFT_CLEANLY = "client request"
DROPPED = "websocket closed"
ROOM_ENDED = "room ended"
REMOVED = "server removed peer"
REPLACED = "replaced by a new connection"
BROADCASTER_GONE = "the broadcaster did not come back"

RELAYED = frozenset({"offer", "answer", "ice", "request-offer"})
MAX_OUTBOX = 1000
ABSENCE_MARGIN = timedelta(seconds=5)
SINK_ATTEMPTS = 3


ERROR_CODES = {
    CLOSE_GOING_AWAY: "shutting_down",
    CLOSE_TOO_BIG: "too_big",
    CLOSE_UNAUTHORIZED: "unauthorized",
    CLOSE_FORBIDDEN: "forbidden",
    CLOSE_NOT_LIVE: "not_live",
    CLOSE_FULL: "full",
    CLOSE_RATE_LIMITED: "rate_limited",
}


class Refused(Exception):
    """A join or a message the hub will not accept: close the connection with `code`.

    `reason` goes in the close frame (short); `message` is for a person (an `error` message).
    """

    def __init__(self, code: int, reason: str, message: str | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.message = message or reason

    def error_message(self) -> dict[str, Any]:
        return error(ERROR_CODES.get(self.code, "refused"), self.message, reason=self.reason)


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Outgoing = dict[str, Any] | Close


@dataclass(eq=False)
class Member:
    """One connected peer. The endpoint sends what lands in `outbox`, in order."""

    peer_id: str
    user_id: str
    role: str
    name: str
    joined_at: datetime
    room_id: str | None = None
    # The process it is connected through (the cluster hub's peers; "" in one process).
    process: str = ""
    outbox: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    closed: Close | None = None

    @classmethod
    def new(cls, *, user_id: str, role: str, name: str, joined_at: datetime) -> Member:
        return cls(str(uuid.uuid4()), user_id, role, name, joined_at)

    def send(self, message: dict[str, Any]) -> None:
        if self.closed is not None:
            return
        if self.outbox.qsize() >= MAX_OUTBOX:
            # The browser is not reading: drop it rather than hold memory for it.
            self.close(CLOSE_TRY_AGAIN, "too slow to receive")
            return
        self.outbox.put_nowait(message)

    def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = Close(code, reason)
            self.outbox.put_nowait(self.closed)

    def describe(self) -> dict[str, Any]:
        """What other browsers learn of this peer. `viewer` is its user id, the viewer's identity
        (as 100ms's customerUserId): the broadcaster counts two tabs of one viewer once."""
        return {
            "peer_id": self.peer_id,
            "viewer": self.user_id,
            "name": self.name,
            "role": self.role,
            "joined_at": rfc3339_micro(self.joined_at),
        }


@dataclass
class Session:
    id: str
    started_at: datetime


def check_role(member: Member, broadcaster_role: str, viewer_role: str) -> None:
    if member.role not in (broadcaster_role, viewer_role):
        raise Refused(CLOSE_FORBIDDEN, f"the role {member.role[:40]!r} cannot join")


def removed_user(reason: str) -> Refused:
    return Refused(CLOSE_FORBIDDEN, "removed from the stream", reason)


def another_broadcaster() -> Refused:
    return Refused(
        CLOSE_FORBIDDEN,
        "another broadcaster is live in this room",
        "Someone else is broadcasting in this room; only one broadcaster at a time.",
    )


def stream_full(cap: int) -> Refused:
    return Refused(
        CLOSE_FULL,
        "stream is full",
        f"This stream is full ({cap} viewers). Try again in a moment.",
    )


def replaced_messages() -> list[Outgoing]:
    """What a broadcaster's older connection gets when the same person connects again."""
    return [
        error("replaced", "This broadcast continued in another window."),
        Close(CLOSE_REPLACED, "replaced by a new connection"),
    ]


def room_ended_messages(reason: str) -> list[Outgoing]:
    return [{"type": "room-ended", "reason": reason}, Close(CLOSE_NORMAL, "room ended")]


def deliver(member: Member, item: Outgoing) -> None:
    if isinstance(item, Close):
        member.close(item.code, item.reason)
    else:
        member.send(item)


def welcome_message(
    member: Member, room_id: str, ice_servers: list[dict[str, Any]], peers: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "type": "welcome",
        "peer_id": member.peer_id,
        "role": member.role,
        "room_id": room_id,
        "ice_servers": ice_servers,
        "peers": peers,
    }


def counterparts(member: Member, present: list[Member], broadcaster_role: str) -> list[Member]:
    """Whom `member` sees and who hears of its coming and going: the broadcaster sees
    everyone, a viewer only the broadcaster (viewers never learn of each other)."""
    others = [m for m in present if m.peer_id != member.peer_id]
    if member.role == broadcaster_role:
        return others
    return [m for m in others if m.role == broadcaster_role]


def viewers_first(members: list[Member], broadcaster_role: str) -> list[Member]:
    return sorted(members, key=lambda m: m.role == broadcaster_role)


def checked_relay(
    member: Member, message: dict[str, Any], broadcaster_role: str
) -> tuple[str, dict[str, Any]] | None:
    """The target's peer id and what it receives; None after sending `member` an error.
    Raises `Refused` for a viewer's offer (trying to publish)."""
    kind = message.get("type")
    if kind not in RELAYED:
        return None
    is_broadcaster = member.role == broadcaster_role
    if kind == "offer" and not is_broadcaster:
        raise Refused(
            CLOSE_FORBIDDEN,
            "viewers cannot publish",
            "Only the broadcaster sends audio and video in this room.",
        )
    if kind in ("answer", "request-offer") and is_broadcaster:
        member.send(error("bad_message", f"the broadcaster does not send {kind!r}"))
        return None
    target_id = message.get("to")
    if not isinstance(target_id, str) or target_id == member.peer_id:
        member.send(error("unknown_peer", "no such peer in this room", to=target_id))
        return None
    out: dict[str, Any] = {"type": kind, "from": member.peer_id}
    if kind in ("offer", "answer"):
        sdp = message.get("sdp")
        if not isinstance(sdp, str | dict) or not sdp:
            member.send(error("bad_message", f"{kind!r} needs an 'sdp'"))
            return None
        out["sdp"] = sdp
    elif kind == "ice":
        candidate = message.get("candidate")
        if candidate is not None and not isinstance(candidate, str | dict):
            member.send(error("bad_message", "'candidate' must be an object or null"))
            return None
        out["candidate"] = candidate
    return target_id, out


def relay_target_problem(
    member: Member, target: Member | None, broadcaster_role: str
) -> dict[str, Any] | None:
    """The error `member` gets when the relay's target is not one it may signal."""
    if target is None:
        return error("unknown_peer", "no such peer in this room")
    if member.role != broadcaster_role and target.role != broadcaster_role:
        return error("forbidden", "viewers can only signal the broadcaster")
    return None


def peer_data(member: Member) -> dict[str, Any]:
    return {
        "peer_id": member.peer_id,
        "user_id": member.user_id,
        "user_name": member.name,
        "role": member.role,
        "joined_at": rfc3339_micro(member.joined_at),
        "type": "regular",
    }


def leave_data(member: Member, now: datetime, reason: str) -> dict[str, Any]:
    return {
        **peer_data(member),
        "left_at": rfc3339_micro(now),
        "duration": int((now - member.joined_at).total_seconds()),
        "reason": reason,
        "message": "",
    }


def close_data(session: Session, now: datetime) -> dict[str, Any]:
    return {
        "session_stopped_at": rfc3339_micro(now),
        "session_duration": int((now - session.started_at).total_seconds()),
    }


def envelope(
    kind: str,
    at: datetime,
    room_id: str,
    room_name: str,
    session: Session,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """A 100ms-shaped webhook envelope."""
    data = {
        "room_id": room_id,
        "room_name": room_name,
        "session_id": session.id,
        "session_started_at": rfc3339_micro(session.started_at),
        **extra,
    }
    return {
        "version": "2.0",
        "id": str(uuid.uuid4()),
        "timestamp": rfc3339_micro(at),
        "type": kind,
        "data": data,
    }


class EventOutbox:
    """Lifecycle events handed, in order, to the sink (the app's provider-event inbox). A
    failing sink is retried, then the event is logged as lost: the reconciler repairs."""

    def __init__(self, sink: EventSink | None = None) -> None:
        self.sink = sink
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._emitter: asyncio.Task[None] | None = None

    def put(self, envelope: dict[str, Any]) -> None:
        self._events.put_nowait(envelope)
        self._ensure_emitter()

    def _ensure_emitter(self) -> None:
        if self._emitter is None or self._emitter.done():
            self._emitter = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        while True:
            envelope = await self._events.get()
            try:
                await self._store(envelope)
            finally:
                self._events.task_done()

    async def _store(self, envelope: dict[str, Any]) -> None:
        if self.sink is None:
            return
        for attempt in range(1, SINK_ATTEMPTS + 1):
            try:
                await self.sink(envelope)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                error: BaseException = RuntimeError("the event inbox was stopped")
            except Exception as exc:  # the reconciler repairs a lost event; keep going
                error = exc
            if attempt == SINK_ATTEMPTS:
                log.error("local.event_lost", event_type=envelope["type"], error=str(error)[:200])
                return
            await asyncio.sleep(0.2 * attempt)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event put so far has been handed to the sink."""
        if not self._events.empty():
            self._ensure_emitter()
        await asyncio.wait_for(self._events.join(), timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await self.flush(timeout)
        if self._emitter is not None:
            self._emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._emitter


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The `error` message sent to a browser."""
    return {"type": "error", "code": code, "message": message, **extra}


def rfc3339_micro(value: datetime) -> str:
    return as_utc(value).isoformat(timespec="microseconds").replace("+00:00", "Z")
