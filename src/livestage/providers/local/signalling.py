"""The in-process signalling hub of the local provider.

Rooms hold connected peers; one broadcaster at a time, at most `viewer_cap` viewers. Media never
passes through the server: the broadcaster's browser opens one RTCPeerConnection per viewer (a
mesh), and the hub relays their offers, answers and ICE candidates, adding `from`.

The hub is transport-free: a `Member` has an outbox the WebSocket endpoint drains. Its methods are
async because its cluster twin (`cluster.py`, several processes sharing rooms through Redis) must
wait for Redis; here every state change runs without an await, hence atomically on the event loop.

Lifecycle events are 100ms-shaped envelopes (`session.open.success`, `peer.join.success`,
`peer.leave.success`, `session.close.success`) handed, in order, to an async `EventSink` (the
app's provider-event inbox), so tracking treats them exactly like 100ms webhooks.

Session rules: a session opens with the first peer and closes when the last peer leaves, except
while the broadcaster's reconnect grace runs: a broadcaster who leaves (drop or clean) has
`reconnect_grace` (plus a small margin, so the tracking's own grace decides the stream's end) to
come back to the same session; after that the room is ended for everyone still in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from livestage.kit.time import Clock, as_utc, utc_now

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


@dataclass(eq=False)
class Room:
    id: str
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    session: Session | None = None
    broadcaster_away: asyncio.TimerHandle | None = None

    def broadcaster(self, role: str) -> Member | None:
        return next((m for m in self.members.values() if m.role == role), None)

    def viewers(self, role: str) -> list[Member]:
        return [m for m in self.members.values() if m.role == role]


class SignallingHub:
    def __init__(
        self,
        *,
        broadcaster_role: str,
        viewer_role: str,
        viewer_cap: int,
        ice_servers: list[dict[str, Any]] | None = None,
        reconnect_grace: timedelta = timedelta(seconds=60),
        absence_margin: timedelta = ABSENCE_MARGIN,
        clock: Clock = utc_now,
        sink: EventSink | None = None,
    ) -> None:
        if broadcaster_role == viewer_role:
            raise ValueError("the broadcaster and viewer roles must differ")
        self.broadcaster_role, self.viewer_role = broadcaster_role, viewer_role
        self.viewer_cap = viewer_cap
        self.ice_servers = list(ice_servers or [])
        self.reconnect_grace, self.absence_margin = reconnect_grace, absence_margin
        self.clock = clock
        self.events = EventOutbox(sink)
        self.rooms: dict[str, Room] = {}
        self._closing = False

    # -- queries -------------------------------------------------------------------------

    async def members(self, room_id: str) -> list[Member]:
        room = self.rooms.get(room_id)
        return list(room.members.values()) if room else []

    async def session(self, room_id: str) -> Session | None:
        room = self.rooms.get(room_id)
        return room.session if room else None

    async def viewer_count(self, room_id: str) -> int:
        room = self.rooms.get(room_id)
        return len(room.viewers(self.viewer_role)) if room else 0

    # -- joining and leaving -------------------------------------------------------------

    async def join(self, room_id: str, room_name: str, member: Member) -> dict[str, Any]:
        """Admit `member` (raises `Refused`), queue its welcome, tell the others."""
        if self._closing:
            raise Refused(CLOSE_GOING_AWAY, "server shutting down")
        check_role(member, self.broadcaster_role, self.viewer_role)
        room = self.rooms.get(room_id) or Room(room_id, room_name)
        if member.role == self.broadcaster_role:
            current = room.broadcaster(self.broadcaster_role)
            if current is not None and current.user_id != member.user_id:
                raise another_broadcaster()
            if current is not None:
                # The same person again (a reload, a second tab, a connection not yet known
                # to be dead): the newest connection wins, in the same session.
                self._remove(room, current, REPLACED, after="keep")
                for message in replaced_messages():
                    deliver(current, message)
            if room.broadcaster_away is not None:
                room.broadcaster_away.cancel()
                room.broadcaster_away = None
        elif len(room.viewers(self.viewer_role)) >= self.viewer_cap:
            raise stream_full(self.viewer_cap)

        self.rooms[room_id] = room
        if room.session is None:
            room.session = Session(secrets.token_hex(12), member.joined_at)
            self._emit(room, "session.open.success", member.joined_at, {})
        room.members[member.peer_id] = member
        member.room_id = room.id
        self._emit(room, "peer.join.success", member.joined_at, peer_data(member))
        peers = [p.describe() for p in self._counterparts(room, member)]
        welcome = welcome_message(member, room.id, self.ice_servers, peers)
        member.send(welcome)
        for other in self._counterparts(room, member):
            other.send({"type": "peer-joined", **member.describe()})
        return welcome

    async def leave(self, member: Member, reason: str) -> None:
        """`member` is gone (no-op when the hub already removed it)."""
        room = self._room_of(member)
        if room is not None:
            self._remove(room, member, reason)

    async def remove(self, member: Member, refusal: Refused) -> None:
        """Throw `member` out: an `error` message, then the close."""
        member.send(refusal.error_message())
        await self.leave(member, REMOVED)
        member.close(refusal.code, refusal.reason)

    async def end_room(self, room_id: str, *, reason: str = ROOM_ENDED) -> int:
        """Close every connection (they get `room-ended`) and the session. Returns how many."""
        return self._end_room(room_id, reason)

    async def remove_user(self, room_id: str, user_id: str, *, reason: str) -> int:
        """Throw out every connection of `user_id` (a ban). Returns how many."""
        room = self.rooms.get(room_id)
        found = [m for m in room.members.values() if m.user_id == user_id] if room else []
        for member in found:
            await self.remove(member, removed_user(reason))
        return len(found)

    def _end_room(self, room_id: str, reason: str) -> int:
        room = self.rooms.get(room_id)
        if room is None:
            return 0
        if room.broadcaster_away is not None:
            room.broadcaster_away.cancel()
            room.broadcaster_away = None
        # Viewers first, so the broadcaster's leave does not start a reconnect grace.
        members = viewers_first(list(room.members.values()), self.broadcaster_role)
        for member in members:
            self._remove(room, member, ROOM_ENDED, after="keep")
            for message in room_ended_messages(reason):
                deliver(member, message)
        self._close_session(room)
        return len(members)

    def _remove(
        self, room: Room, member: Member, reason: str, *, after: Literal["auto", "keep"] = "auto"
    ) -> None:
        """Remove and record the leave. `auto`: then start the broadcaster's grace, or close
        the session when the room is empty; `keep`: the caller decides about the session."""
        if room.members.pop(member.peer_id, None) is None:
            return
        now = max(self.clock(), member.joined_at)
        self._emit(room, "peer.leave.success", now, leave_data(member, now, reason))
        for other in self._counterparts(room, member):
            other.send({"type": "peer-left", "peer_id": member.peer_id, "reason": reason})
        if after == "keep":
            return
        if member.role == self.broadcaster_role:
            self._start_broadcaster_grace(room)
        if not room.members and room.broadcaster_away is None:
            self._close_session(room)

    def _start_broadcaster_grace(self, room: Room) -> None:
        if room.broadcaster_away is not None:
            room.broadcaster_away.cancel()
        delay = (self.reconnect_grace + self.absence_margin).total_seconds()
        loop = asyncio.get_running_loop()
        room.broadcaster_away = loop.call_later(delay, self._broadcaster_gone, room)

    def _broadcaster_gone(self, room: Room) -> None:
        room.broadcaster_away = None
        if self.rooms.get(room.id) is not room or room.broadcaster(self.broadcaster_role):
            return
        log.info("local.broadcaster_gone", room_id=room.id, viewers=len(room.members))
        self._end_room(room.id, BROADCASTER_GONE)

    def _close_session(self, room: Room) -> None:
        session = room.session
        if session is not None:
            now = max(self.clock(), session.started_at)
            self._emit(room, "session.close.success", now, close_data(session, now))
            room.session = None
        if not room.members and self.rooms.get(room.id) is room:
            del self.rooms[room.id]

    def _room_of(self, member: Member) -> Room | None:
        room = self.rooms.get(member.room_id or "")
        return room if room is not None and room.members.get(member.peer_id) is member else None

    def _counterparts(self, room: Room, member: Member) -> list[Member]:
        return counterparts(member, list(room.members.values()), self.broadcaster_role)

    # -- messages --------------------------------------------------------------------------

    async def relay(self, member: Member, message: dict[str, Any]) -> None:
        """Forward an offer/answer/ice/request-offer to its `to`, adding `from`.

        A viewer sending an offer is trying to publish: `Refused` (4403). Other mistakes get an
        `error` message and the connection stays open.
        """
        room = self._room_of(member)
        if room is None:
            return
        checked = checked_relay(member, message, self.broadcaster_role)
        if checked is None:
            return
        target_id, out = checked
        target = room.members.get(target_id)
        if (problem := relay_target_problem(member, target, self.broadcaster_role)) is not None:
            member.send(problem)
            return
        assert target is not None
        target.send(out)

    # -- events ----------------------------------------------------------------------------

    def _emit(self, room: Room, kind: str, at: datetime, extra: dict[str, Any]) -> None:
        assert room.session is not None
        self.events.put(envelope(kind, at, room.id, room.name, room.session, extra))

    @property
    def sink(self) -> EventSink | None:
        return self.events.sink

    @sink.setter
    def sink(self, sink: EventSink | None) -> None:
        self.events.sink = sink

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event emitted so far has been handed to the sink."""
        await self.events.flush(timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Server shutdown: close every connection (their leaves are recorded), stop timers.

        Sessions are not closed: a broadcaster reconnecting to the restarted server within the
        grace carries on, and the reconciler ends what nobody came back to.
        """
        self._closing = True
        for room in list(self.rooms.values()):
            if room.broadcaster_away is not None:
                room.broadcaster_away.cancel()
                room.broadcaster_away = None
            for member in list(room.members.values()):
                self._remove(room, member, DROPPED, after="keep")
                member.close(CLOSE_GOING_AWAY, "server shutting down")
        await self.events.aclose(timeout)


# -- the rules and messages both hubs share (this one and cluster.py's) -------------------


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
