"""`POST /_emulator/rooms/{room_id}/script`: many simulated joins and leaves at explicit times.

Body: `{"events": [op, ...]}`, applied in the given order, where an op is
`{"op": "join", "user_id", "role", "at", "peer_id"?, "name"?, "metadata"?}` or
`{"op": "leave", "peer_id", "at", "reason"?, "message"?}`. `at` is RFC 3339 with a zone (at most
microsecond precision) and stamps `joined_at` / `left_at`, the session's start and end and the
webhook envelopes instead of the clock. Each op has exactly the effects (and webhooks) of the
single-peer endpoints: the first join opens a session, the last leave closes it.

The whole script is checked before anything is applied, so a bad script changes nothing (400):
`at` must never go back in time (within the script, nor before the last join/leave of the
room's open session), a leave must name a connected peer, a join needs a role of the room's
template with room under the role's cap, and a client-chosen `peer_id` must be a UUID not used
before. Webhooks go out in the background, so large scripts answer quickly.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.peers import connected_peer, join_peer, leave_peer
from hms_emulator.runtime import Emulator
from hms_emulator.state import Room, new_uuid, parse_ts

MAX_OPS = 20_000


@dataclass(frozen=True)
class Join:
    at: datetime
    peer_id: str
    user_id: str
    role: str
    name: str
    metadata: str


@dataclass(frozen=True)
class Leave:
    at: datetime
    peer_id: str
    reason: str
    message: str


Op = Join | Leave


def parse_script(body: dict[str, Any]) -> list[Op]:
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise invalid_body("events must be a non-empty list")
    if len(events) > MAX_OPS:
        raise invalid_body(f"events: at most {MAX_OPS} ops per script")
    return [_parse_op(raw, f"events[{i}]") for i, raw in enumerate(events)]


def _parse_op(raw: object, where: str) -> Op:
    if not isinstance(raw, dict):
        raise invalid_body(f"{where} must be an object")
    at = parse_ts(_text(raw, "at", where) or "")
    if at is None:
        raise invalid_body(f"{where}.at must be RFC 3339 with a zone, at most microseconds")
    op = raw.get("op")
    if op == "join":
        user_id, role = _text(raw, "user_id", where), _text(raw, "role", where)
        if not user_id or not role:
            raise invalid_body(f"{where}: a join needs user_id and role")
        peer_id = _peer_id(raw, where, required=False)
        name = _text(raw, "name", where) or user_id
        return Join(at, peer_id, user_id, role, name, _text(raw, "metadata", where) or "")
    if op == "leave":
        reason = _text(raw, "reason", where) or "client request"
        message = _text(raw, "message", where) or ""
        return Leave(at, _peer_id(raw, where, required=True), reason, message)
    raise invalid_body(f"{where}.op must be join or leave")


def _text(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_body(f"{where}.{key} must be a string")
    return value


def _peer_id(raw: dict[str, Any], where: str, *, required: bool) -> str:
    value = _text(raw, "peer_id", where)
    if not value:
        if required:
            raise invalid_body(f"{where}: a leave needs peer_id")
        return new_uuid()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid_body(f"{where}.peer_id must be a UUID") from None


class _Dry:
    """The script played against a copy of the room's peer bookkeeping, to reject it whole."""

    def __init__(self, emu: Emulator, room: Room) -> None:
        self.template = emu.state.templates.get(room.template_id)
        session = emu.state.active_session(room.id)
        connected = session.connected_peers() if session else []
        self.connected = {p.id: p.role for p in connected}
        self.per_role = Counter(p.role for p in connected)
        self.used = {pid for s in emu.state.sessions.values() for pid in s.peers}
        self.last = session.updated_at if session else None

    def play(self, op: Op, where: str) -> None:
        if self.last is not None and op.at < self.last:
            raise invalid_body(f"{where}.at goes back in time")
        self.last = op.at
        if isinstance(op, Join):
            self._join(op, where)
        else:
            self._leave(op, where)

    def _join(self, op: Join, where: str) -> None:
        if self.template is None or op.role not in self.template.roles:
            raise invalid_body(f"{where}.role: role not allowed")
        cap = self.template.max_peers(op.role)
        if cap is not None and self.per_role[op.role] >= cap:
            raise invalid_body(f"{where}.role: role limit reached")
        if op.peer_id in self.used:
            raise invalid_body(f"{where}.peer_id: duplicate peer id")
        self.used.add(op.peer_id)
        self.connected[op.peer_id] = op.role
        self.per_role[op.role] += 1

    def _leave(self, op: Leave, where: str) -> None:
        role = self.connected.pop(op.peer_id, None)
        if role is None:
            raise invalid_body(f"{where}.peer_id: peer not joined")
        self.per_role[role] -= 1


def check_script(emu: Emulator, room: Room, ops: list[Op]) -> None:
    if not room.enabled:
        raise ApiError(403, "room is disabled")
    dry = _Dry(emu, room)
    for index, op in enumerate(ops):
        dry.play(op, f"events[{index}]")


def run_script(emu: Emulator, room: Room, ops: list[Op]) -> dict[str, Any]:
    check_script(emu, room, ops)
    events_before = len(emu.state.events)
    peer_ids: list[str] = []
    session_ids: list[str] = []
    for op in ops:
        with emu.frozen_at(op.at):
            session_id = _apply(emu, room, op)
        if isinstance(op, Join):
            peer_ids.append(op.peer_id)
        if session_id not in session_ids:
            session_ids.append(session_id)
    return {
        "room_id": room.id,
        "peer_ids": peer_ids,
        "session_ids": session_ids,
        "events_emitted": len(emu.state.events) - events_before,
    }


def _apply(emu: Emulator, room: Room, op: Op) -> str:
    if isinstance(op, Join):
        peer = join_peer(
            emu,
            room,
            user_id=op.user_id,
            role=op.role,
            name=op.name,
            metadata=op.metadata,
            peer_id=op.peer_id,
        )
    else:
        peer = connected_peer(emu, room, op.peer_id)
        leave_peer(emu, room, peer, reason=op.reason, message=op.message)
    return peer.session_id
