"""The local provider's signalling hub when several processes serve one site (Redis set).

The same protocol and rules as `SignallingHub`, with each room's state in Redis instead of one
process's memory:

- who is in a room (and through which process), its session and the broadcaster's absence are
  Redis hashes changed only by Lua scripts, so admission (one broadcaster, the viewer cap),
  leaving and ending are atomic across the cluster, and each lifecycle event is emitted once, by
  the process whose script made the change;
- a message for a peer connected to another process goes to that process's own channel (pub/sub,
  in order from each sender) and from there into the peer's outbox;
- every process keeps a heartbeat key. Any process sweeps the peers of a process whose heartbeat
  has expired (killed, frozen) as dropped, and ends the rooms whose broadcaster stayed away past
  the grace. A broadcaster whose process died reconnects through another one and, being the same
  person, replaces its old connection in the same session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage.kit.bus import RedisBus
from livestage.kit.tasks import cancel_all
from livestage.kit.time import Clock, parse_rfc3339, utc_now
from livestage.providers.local.protocol import (
    ABSENCE_MARGIN,
    BROADCASTER_GONE,
    CLOSE_GOING_AWAY,
    DROPPED,
    REMOVED,
    REPLACED,
    ROOM_ENDED,
    Close,
    EventOutbox,
    EventSink,
    Member,
    Outgoing,
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
    rfc3339_micro,
    room_ended_messages,
    stream_full,
    viewers_first,
    welcome_message,
)

log = structlog.get_logger()

# KEYS: room, members, rooms. ARGV: room id, room name, member (JSON), peer id, role, user id,
# broadcaster role, viewer role, viewer cap, a new session id, joined at.
JOIN = """
local replaced = false
local viewers = 0
for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
  local m = cjson.decode(raw)
  if m.role == ARGV[8] then viewers = viewers + 1 end
  if ARGV[5] == ARGV[7] and m.role == ARGV[7] then
    if m.user_id ~= ARGV[6] then return cjson.encode({refused = 'broadcaster'}) end
    replaced = raw
  end
end
if ARGV[5] == ARGV[8] and viewers >= tonumber(ARGV[9]) then
  return cjson.encode({refused = 'full'})
end
if replaced then redis.call('HDEL', KEYS[2], cjson.decode(replaced).peer_id) end
local opened = false
if redis.call('HEXISTS', KEYS[1], 'session_id') == 0 then
  redis.call('HSET', KEYS[1], 'session_id', ARGV[10], 'session_started_at', ARGV[11])
  opened = true
end
redis.call('HSET', KEYS[1], 'name', ARGV[2])
if ARGV[5] == ARGV[7] then redis.call('HDEL', KEYS[1], 'away_until') end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
local session = redis.call('HMGET', KEYS[1], 'session_id', 'session_started_at')
return cjson.encode({replaced = replaced, opened = opened, session_id = session[1],
  session_started_at = session[2], members = redis.call('HVALS', KEYS[2])})
"""

# KEYS: room, members, rooms. ARGV: room id, peer id, away until ('' unless the broadcaster's
# absence starts). The session closes when the room is empty and no broadcaster is away.
LEAVE = """
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return false end
redis.call('HDEL', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'away_until', ARGV[3]) end
local session = redis.call('HMGET', KEYS[1], 'session_id', 'session_started_at', 'name')
local remaining = redis.call('HVALS', KEYS[2])
local closed = false
if #remaining == 0 and redis.call('HEXISTS', KEYS[1], 'away_until') == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  closed = true
end
return cjson.encode({member = raw, members = remaining, closed = closed,
  session_id = session[1], session_started_at = session[2], name = session[3]})
"""

# KEYS: room, members, rooms. ARGV: room id, 'always' or 'abandoned', now (epoch seconds),
# broadcaster role. 'abandoned' ends the room only when the broadcaster's absence has run out.
END = """
local room = redis.call('HMGET', KEYS[1], 'session_id', 'session_started_at', 'name', 'away_until')
local members = redis.call('HVALS', KEYS[2])
if ARGV[2] == 'abandoned' then
  if not room[4] or tonumber(room[4]) > tonumber(ARGV[3]) then return false end
  for _, raw in ipairs(members) do
    if cjson.decode(raw).role == ARGV[4] then return false end
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return cjson.encode({members = members, session_id = room[1], session_started_at = room[2],
  name = room[3]})
"""


@dataclass(frozen=True, slots=True)
class Keys:
    """Where one deployment keeps its rooms (the prefix names the Redis database, as pub/sub
    channels are shared by every database of a Redis server)."""

    prefix: str

    def room(self, room_id: str) -> str:
        return f"{self.prefix}:room:{room_id}"

    def members(self, room_id: str) -> str:
        return f"{self.prefix}:members:{room_id}"

    @property
    def rooms(self) -> str:
        return f"{self.prefix}:rooms"

    def alive(self, process: str) -> str:
        return f"{self.prefix}:alive:{process}"

    def inbox(self, process: str) -> str:
        return f"{self.prefix}:to:{process}"

    def room_keys(self, room_id: str) -> list[str]:
        return [self.room(room_id), self.members(room_id), self.rooms]


class ClusterHub:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        broadcaster_role: str,
        viewer_role: str,
        viewer_cap: int,
        ice_servers: list[dict[str, Any]] | None = None,
        reconnect_grace: timedelta = timedelta(seconds=60),
        absence_margin: timedelta = ABSENCE_MARGIN,
        clock: Clock = utc_now,
        sink: EventSink | None = None,
        heartbeat_seconds: float = 1.0,
        process_ttl_seconds: float = 5.0,
    ) -> None:
        if broadcaster_role == viewer_role:
            raise ValueError("the broadcaster and viewer roles must differ")
        self.redis, self.keys = redis, Keys(prefix)
        self.broadcaster_role, self.viewer_role = broadcaster_role, viewer_role
        self.viewer_cap = viewer_cap
        self.ice_servers = list(ice_servers or [])
        self.reconnect_grace, self.absence_margin = reconnect_grace, absence_margin
        self.clock = clock
        self.events = EventOutbox(sink)
        self.heartbeat_seconds, self.process_ttl_seconds = heartbeat_seconds, process_ttl_seconds
        self.process = secrets.token_hex(8)
        self.bus = RedisBus(redis, self.keys.inbox(self.process))
        self.local: dict[str, Member] = {}
        self._join = redis.register_script(JOIN)
        self._leave = redis.register_script(LEAVE)
        self._end = redis.register_script(END)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def sink(self) -> EventSink | None:
        return self.events.sink

    @sink.setter
    def sink(self, sink: EventSink | None) -> None:
        self.events.sink = sink

    async def start(self) -> None:
        """Announce this process alive and receive what other processes send its peers."""
        await self._beat()
        self.bus.start(self._received)
        self._tasks = [asyncio.create_task(self._keep_alive())]
        await self.bus.subscribed()

    # -- queries -------------------------------------------------------------------------

    async def members(self, room_id: str) -> list[Member]:
        return _members(await self.redis.hvals(self.keys.members(room_id)))

    async def session(self, room_id: str) -> Session | None:
        found = await self.redis.hmget(
            self.keys.room(room_id), ["session_id", "session_started_at"]
        )
        return _session(found[0], found[1])

    async def viewer_count(self, room_id: str) -> int:
        return sum(1 for m in await self.members(room_id) if m.role == self.viewer_role)

    # -- joining and leaving -------------------------------------------------------------

    async def join(self, room_id: str, room_name: str, member: Member) -> dict[str, Any]:
        if self._closing:
            raise Refused(CLOSE_GOING_AWAY, "server shutting down")
        check_role(member, self.broadcaster_role, self.viewer_role)
        # Known here before Redis admits it: a message for it may follow at once.
        self.local[member.peer_id] = member
        try:
            result = await self._run(
                self._join,
                room_id,
                room_name,
                self._record(member),
                member.peer_id,
                member.role,
                member.user_id,
                self.broadcaster_role,
                self.viewer_role,
                self.viewer_cap,
                secrets.token_hex(12),
                rfc3339_micro(member.joined_at),
            )
        except BaseException:
            self.local.pop(member.peer_id, None)
            raise
        assert result is not None  # the join script always answers
        if refused := result.get("refused"):
            self.local.pop(member.peer_id, None)
            raise (
                another_broadcaster() if refused == "broadcaster" else stream_full(self.viewer_cap)
            )
        member.room_id = room_id
        session = _session(result["session_id"], result["session_started_at"])
        assert session is not None
        present = _members(result["members"])
        if result["replaced"]:
            (old,) = _members([result["replaced"]])
            self._emit_leave(room_id, room_name, session, old, REPLACED, member.joined_at)
            for item in replaced_messages():
                self._send(old, item)
            for other in counterparts(old, present, self.broadcaster_role):
                if other.peer_id != member.peer_id:
                    self._send(
                        other, {"type": "peer-left", "peer_id": old.peer_id, "reason": REPLACED}
                    )
        if result["opened"]:
            self.events.put(
                envelope("session.open.success", member.joined_at, room_id, room_name, session, {})
            )
        self.events.put(
            envelope(
                "peer.join.success",
                member.joined_at,
                room_id,
                room_name,
                session,
                peer_data(member),
            )
        )
        if member.role == self.broadcaster_role:
            self._cancel_timer(room_id)
        others = counterparts(member, present, self.broadcaster_role)
        welcome = welcome_message(member, room_id, self.ice_servers, [p.describe() for p in others])
        member.send(welcome)
        for other in others:
            self._send(other, {"type": "peer-joined", **member.describe()})
        return welcome

    async def leave(self, member: Member, reason: str) -> None:
        if self.local.get(member.peer_id) is member:
            del self.local[member.peer_id]
        if member.room_id is not None:
            await self._leave_room(member.room_id, member.peer_id, reason)

    async def remove(self, member: Member, refusal: Refused) -> None:
        member.send(refusal.error_message())
        await self.leave(member, REMOVED)
        member.close(refusal.code, refusal.reason)

    async def _leave_room(self, room_id: str, peer_id: str, reason: str) -> None:
        record = await self.redis.hget(self.keys.members(room_id), peer_id)
        if record is None:
            return
        (gone,) = _members([record])
        broadcaster = gone.role == self.broadcaster_role
        delay = (self.reconnect_grace + self.absence_margin).total_seconds()
        away_until = f"{time.time() + delay:.3f}" if broadcaster else ""
        result = await self._run(self._leave, room_id, peer_id, away_until)
        if result is None:
            return  # another process recorded this leave first
        session = _session(result["session_id"], result["session_started_at"])
        assert session is not None
        now = max(self.clock(), gone.joined_at)
        self._emit_leave(room_id, result["name"] or "", session, gone, reason, now)
        for other in counterparts(gone, _members(result["members"]), self.broadcaster_role):
            self._send(other, {"type": "peer-left", "peer_id": gone.peer_id, "reason": reason})
        if result["closed"]:
            self._emit_close(room_id, result["name"] or "", session)
        elif broadcaster:
            self._start_timer(room_id, delay)

    async def end_room(self, room_id: str, *, reason: str = ROOM_ENDED) -> int:
        return await self._end_room(room_id, reason, abandoned=False)

    async def remove_user(self, room_id: str, user_id: str, *, reason: str) -> int:
        """Throw out every connection of `user_id`, through whichever process holds it."""
        found = [m for m in await self.members(room_id) if m.user_id == user_id]
        refusal = removed_user(reason)
        for member in found:
            self._send(member, refusal.error_message())
            await self._leave_room(room_id, member.peer_id, REMOVED)
            self._send(member, Close(refusal.code, refusal.reason))
        return len(found)

    async def _end_room(self, room_id: str, reason: str, *, abandoned: bool) -> int:
        self._cancel_timer(room_id)
        mode = "abandoned" if abandoned else "always"
        # The local timer fires when the absence runs out; a little slack for clock rounding.
        now = time.time() + 0.1
        result = await self._run(self._end, room_id, mode, f"{now:.3f}", self.broadcaster_role)
        if result is None:
            return 0
        members = viewers_first(_members(result["members"]), self.broadcaster_role)
        session = _session(result["session_id"], result["session_started_at"])
        name = result["name"] or ""
        for member in members:
            if session is not None:
                self._emit_leave(room_id, name, session, member, ROOM_ENDED, self.clock())
            for item in room_ended_messages(reason):
                self._send(member, item)
        if session is not None:
            self._emit_close(room_id, name, session)
        return len(members)

    # -- messages --------------------------------------------------------------------------

    async def relay(self, member: Member, message: dict[str, Any]) -> None:
        if self.local.get(member.peer_id) is not member or member.room_id is None:
            return
        checked = checked_relay(member, message, self.broadcaster_role)
        if checked is None:
            return
        target_id, out = checked
        record = await self.redis.hget(self.keys.members(member.room_id), target_id)
        target = _members([record])[0] if record is not None else None
        if (problem := relay_target_problem(member, target, self.broadcaster_role)) is not None:
            member.send(problem)
            return
        assert target is not None
        self._send(target, out)

    def _send(self, peer: Member, item: Outgoing) -> None:
        """Into the peer's outbox here, or over its process's channel."""
        local = self.local.get(peer.peer_id)
        if local is not None:
            deliver(local, item)
            if isinstance(item, Close):
                del self.local[peer.peer_id]
            return
        if peer.process and peer.process != self.process:
            message: dict[str, Any] = {"peer": peer.peer_id}
            if isinstance(item, Close):
                message["close"] = [item.code, item.reason]
            else:
                message["send"] = item
            self.bus.send(message, channel=self.keys.inbox(peer.process))

    def _received(self, message: dict[str, Any]) -> None:
        member = self.local.get(str(message.get("peer")))
        if member is None:
            return
        if "close" in message:
            code, reason = message["close"]
            self.local.pop(member.peer_id, None)
            member.close(int(code), str(reason))
        elif isinstance(message.get("send"), dict):
            member.send(message["send"])

    # -- events ----------------------------------------------------------------------------

    def _emit_leave(
        self,
        room_id: str,
        room_name: str,
        session: Session,
        member: Member,
        reason: str,
        now: datetime,
    ) -> None:
        now = max(now, member.joined_at)
        data = leave_data(member, now, reason)
        self.events.put(envelope("peer.leave.success", now, room_id, room_name, session, data))

    def _emit_close(self, room_id: str, room_name: str, session: Session) -> None:
        now = max(self.clock(), session.started_at)
        data = close_data(session, now)
        self.events.put(envelope("session.close.success", now, room_id, room_name, session, data))

    async def flush(self, timeout: float = 10.0) -> None:
        await self.events.flush(timeout)

    # -- the broadcaster's absence and dead processes --------------------------------------

    def _start_timer(self, room_id: str, delay: float) -> None:
        self._cancel_timer(room_id)
        loop = asyncio.get_running_loop()
        self._timers[room_id] = loop.call_later(delay, self._absence_over, room_id)

    def _cancel_timer(self, room_id: str) -> None:
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()

    def _absence_over(self, room_id: str) -> None:
        self._timers.pop(room_id, None)
        task = asyncio.get_running_loop().create_task(self._end_abandoned(room_id))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _end_abandoned(self, room_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            if ended := await self._end_room(room_id, BROADCASTER_GONE, abandoned=True):
                log.info("local.broadcaster_gone", room_id=room_id, peers=ended)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self._beat()
                await self.sweep()
            except (RedisError, OSError) as problem:
                log.warning("local.cluster_sweep_failed", error=type(problem).__name__)

    async def _beat(self) -> None:
        ttl = int(self.process_ttl_seconds * 1000)
        await self.redis.set(self.keys.alive(self.process), "1", px=ttl)

    async def sweep(self) -> None:
        """Record as dropped the peers of processes that stopped beating, and end the rooms
        whose broadcaster's absence ran out (its own process may be the dead one)."""
        alive: dict[str, bool] = {self.process: True}
        for raw_id in await self.redis.smembers(self.keys.rooms):
            room_id = _text(raw_id)
            for member in await self.members(room_id):
                process = member.process
                if process not in alive:
                    alive[process] = bool(await self.redis.exists(self.keys.alive(process)))
                if not alive[process]:
                    await self._leave_room(room_id, member.peer_id, DROPPED)
            await self._end_room(room_id, BROADCASTER_GONE, abandoned=True)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Shutdown: this process's connections are recorded as dropped (a broadcaster among
        them has the grace to come back through another process)."""
        self._closing = True
        for member in list(self.local.values()):
            with contextlib.suppress(RedisError, OSError):
                await self.leave(member, DROPPED)
            member.close(CLOSE_GOING_AWAY, "server shutting down")
        self.local.clear()
        for timer in self._timers.values():
            timer.cancel()
        await cancel_all(list(self._tasks), timeout=timeout, what="cluster hub")
        await self.bus.stop()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.keys.alive(self.process))
        await self.events.aclose(timeout)

    # -- Redis -----------------------------------------------------------------------------

    def _record(self, member: Member) -> str:
        return json.dumps(
            {
                "peer_id": member.peer_id,
                "user_id": member.user_id,
                "role": member.role,
                "name": member.name,
                "joined_at": rfc3339_micro(member.joined_at),
                "process": self.process,
            }
        )

    async def _run(self, script: Any, room_id: str, *args: object) -> dict[str, Any] | None:
        raw = await script(keys=self.keys.room_keys(room_id), args=[room_id, *args])
        return json.loads(raw) if raw else None


def _members(records: object) -> list[Member]:
    """Peers from their Redis records (cjson writes an empty list as `{}`)."""
    if not isinstance(records, list):
        return []
    members = []
    for raw in records:
        data = json.loads(raw)
        joined_at = parse_rfc3339(data["joined_at"])
        members.append(
            Member(
                data["peer_id"],
                data["user_id"],
                data["role"],
                data["name"],
                joined_at,
                process=data.get("process", ""),
            )
        )
    return members


def _session(session_id: object, started_at: object) -> Session | None:
    if not session_id or not started_at:
        return None
    return Session(_text(session_id), parse_rfc3339(_text(started_at)))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
