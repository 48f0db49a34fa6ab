"""The in-process signalling hub of the local provider.

Rooms hold connected peers; one broadcaster at a time, at most `viewer_cap` viewers. Media never
passes through the server: the broadcaster's browser opens one RTCPeerConnection per viewer (a
mesh), and the hub relays their offers, answers and ICE candidates, adding `from`.

The hub is transport-free: a `Member` has an outbox the WebSocket endpoint drains. Its methods are
async because its cluster twin (`cluster.py`, several processes sharing rooms through Redis) must
wait for Redis; here every state change runs without an await, hence atomically on the event loop.

Lifecycle events are 100ms-shaped envelopes handed, in order, to the app's provider-event inbox
(`protocol.py` holds what both hubs share).

Session rules: a session opens with the first peer and closes when the last peer leaves, except
while the broadcaster's reconnect grace runs: a broadcaster who leaves (drop or clean) has
`reconnect_grace` (plus a small margin, so the tracking's own grace decides the stream's end) to
come back to the same session; after that the room is ended for everyone still in it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from livestage.kit.time import Clock, utc_now
from livestage.providers.local.protocol import (
    ABSENCE_MARGIN,
    BROADCASTER_GONE,
    CLOSE_GOING_AWAY,
    DROPPED,
    REMOVED,
    REPLACED,
    ROOM_ENDED,
    EventOutbox,
    EventSink,
    Member,
    Refused,
    Session,
    another_broadcaster,
    check_role,
    checked_relay,
    close_data,
    counterparts,
    deliver,
    envelope,
    leave_data,
    peer_data,
    relay_target_problem,
    removed_user,
    replaced_messages,
    room_ended_messages,
    stream_full,
    viewers_first,
    welcome_message,
)

log = structlog.get_logger()


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
