"""Sessions and peers: simulated joins and leaves, `/v2/active-rooms` and `/v2/sessions`.

A room's session opens with its first peer and closes when the last one leaves or the room is
ended; every step emits the webhook 100ms would send. An ended room's live stream stops at once
(reason `client request`); a room left empty stops it `hls_idle_stop_seconds` later. Peer and
session times in webhooks are rendered like the Sessions API (nine fractional digits, the last
three always zero), so a receiver parses exactly the microsecond values the emulator holds.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_emulator.body import json_body, ok, opt_bool, opt_str
from hms_emulator.config import new_object_id
from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.live_streams import stop_room_streams, stop_when_still_empty
from hms_emulator.rooms import room_or_404
from hms_emulator.runtime import Emulator, emulator_of
from hms_emulator.state import (
    ZERO_TIME,
    Peer,
    Room,
    Session,
    new_uuid,
    newest_first,
    paginate,
    parse_bool_query,
    ts,
    ts_nanos,
)


def room_fields(room: Room, session: Session) -> dict[str, Any]:
    return {
        "room_id": room.id,
        "room_name": room.name,
        "session_id": session.id,
        "template_id": room.template_id,
    }


def _peer_data(room: Room, session: Session, peer: Peer) -> dict[str, Any]:
    return {
        **room_fields(room, session),
        "peer_id": peer.id,
        "user_id": peer.user_id,
        "user_name": peer.name,
        "user_data": peer.metadata,
        "role": peer.role,
        "joined_at": ts_nanos(peer.joined_at),
        "session_started_at": ts_nanos(session.created_at),
        "type": "regular",
    }


def join_peer(
    emu: Emulator,
    room: Room,
    *,
    user_id: str,
    role: str,
    name: str,
    metadata: str = "",
    peer_id: str | None = None,
) -> Peer:
    if not room.enabled:
        raise ApiError(403, "room is disabled")
    template = emu.state.templates.get(room.template_id)
    session = emu.state.active_session(room.id)
    if template is None or role not in template.roles:
        _join_failure(emu, room, user_id=user_id, role=role, name=name, metadata=metadata)
        raise ApiError(403, "role not allowed")
    cap = template.max_peers(role)
    taken = [p for p in session.connected_peers() if p.role == role] if session else []
    if cap is not None and len(taken) >= cap:
        _join_failure(emu, room, user_id=user_id, role=role, name=name, metadata=metadata)
        raise ApiError(409, "role not allowed")
    session = session or _open_session(emu, room)
    allowed = template.roles[role].get("publishParams", {}).get("allowed", [])
    peer_id = peer_id or new_uuid()
    peer = Peer(peer_id, session.id, room.id, user_id, name, role, metadata, emu.now())
    peer.tracks = _tracks(allowed, emu)
    session.peers[peer.id] = peer
    session.updated_at = peer.joined_at
    emu.emit(room, "peer.join.success", _peer_data(room, session, peer))
    return peer


def _tracks(allowed: list[str], emu: Emulator) -> dict[str, dict[str, Any]]:
    stream_id = new_uuid()
    tracks: dict[str, dict[str, Any]] = {}
    for kind in ("audio", "video"):
        if kind in allowed:
            track_id = new_uuid()
            tracks[track_id] = {
                "id": track_id,
                "stream_id": stream_id,
                "mute": False,
                "type": kind,
                "source": "regular",
                "started_at": ts(emu.now()),
                "description": "",
            }
    return tracks


def _open_session(emu: Emulator, room: Room) -> Session:
    now = emu.now()
    session = Session(new_object_id(), room.id, emu.config.customer_id, emu.config.app_id, now, now)
    emu.state.sessions[session.id] = session
    data = {**room_fields(room, session), "session_started_at": ts_nanos(now)}
    emu.emit(room, "session.open.success", data)
    return session


def _join_failure(
    emu: Emulator, room: Room, *, user_id: str, role: str, name: str, metadata: str
) -> None:
    data = {
        "room_id": room.id,
        "room_name": room.name,
        "peer_id": new_uuid(),
        "user_id": user_id,
        "template_id": room.template_id,
        "user_name": name,
        "user_data": metadata,
        "role": role,
        "joined_at": ZERO_TIME,
        "error_message": "role not allowed",
        "type": "regular",
    }
    emu.emit(room, "peer.join.failure", data)


def leave_peer(
    emu: Emulator,
    room: Room,
    peer: Peer,
    *,
    reason: str,
    message: str = "",
    close_when_empty: bool = True,
) -> None:
    session = emu.state.sessions[peer.session_id]
    peer.left_at = session.updated_at = emu.now()
    data = {
        **_peer_data(room, session, peer),
        "left_at": ts_nanos(peer.left_at),
        "duration": int((peer.left_at - peer.joined_at).total_seconds()),
        "reason": reason,
        "message": message,
    }
    emu.emit(room, "peer.leave.success", data)
    if close_when_empty and not session.connected_peers():
        close_session(emu, room, session)
        stop_when_still_empty(emu, room, session.id)


def close_session(
    emu: Emulator, room: Room, session: Session, *, stream_reason: str | None = None
) -> None:
    """Close the session; with `stream_reason`, stop the room's live stream too."""
    now = emu.now()
    session.active, session.updated_at = False, now
    data = {
        **room_fields(room, session),
        "session_started_at": ts_nanos(session.created_at),
        "session_stopped_at": ts_nanos(now),
        "session_duration": int((now - session.created_at).total_seconds()),
    }
    emu.emit(room, "session.close.success", data)
    if stream_reason is not None:
        stop_room_streams(emu, room, reason=stream_reason)


def connected_peer(emu: Emulator, room: Room, peer_id: str) -> Peer:
    session = emu.state.active_session(room.id)
    peer = session.peers.get(peer_id) if session else None
    if peer is None or peer.left_at is not None:
        raise ApiError(404, "peer not found")
    return peer


def _live_session(emu: Emulator, room_id: str) -> tuple[Room, Session]:
    room = room_or_404(emu, room_id)
    session = emu.state.active_session(room.id)
    if session is None:
        raise ApiError(404, "room is not active")
    return room, session


async def get_active_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room, session = _live_session(emu, request.path_params["room_id"])
    return ok(
        {
            "id": room.id,
            "name": room.name,
            "customer_id": room.customer_id,
            "app_id": room.app_id,
            "session": {
                "id": session.id,
                "created_at": ts(session.created_at),
                "peers": [p.id for p in session.connected_peers()],
            },
        }
    )


async def list_active_peers(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    _, session = _live_session(emu, request.path_params["room_id"])
    peers = session.connected_peers()
    if user_id := query.get("user_id"):
        peers = [p for p in peers if p.user_id == user_id]
    if role := query.get("role"):
        peers = [p for p in peers if p.role == role]
    return ok({"peers": {p.id: p.to_active_json() for p in peers}})


async def get_active_peer(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room, _ = _live_session(emu, request.path_params["room_id"])
    peer = connected_peer(emu, room, request.path_params["peer_id"])
    return ok({**peer.to_active_json(), "tracks": peer.tracks})


async def update_peer(request: Request) -> JSONResponse:
    """Name, metadata and role of a connected peer; a role change emits `role.change.success`
    without `role_change_requested_by` (made by the API, not a peer)."""
    emu = emulator_of(request)
    room, session = _live_session(emu, request.path_params["room_id"])
    peer = connected_peer(emu, room, request.path_params["peer_id"])
    body = await json_body(request, must_not_be_empty=True)
    name, role, metadata = opt_str(body, "name"), opt_str(body, "role"), opt_str(body, "metadata")
    if name is None and role is None and metadata is None:
        raise invalid_body("one of name, role or metadata is required")
    if role is not None and role != peer.role:
        _change_role(emu, room, session, peer, role)
    if name is not None:
        peer.name = name
    if metadata is not None:
        peer.metadata = metadata
    return ok({**peer.to_active_json(), "tracks": peer.tracks})


def _change_role(emu: Emulator, room: Room, session: Session, peer: Peer, role: str) -> None:
    template = emu.state.templates.get(room.template_id)
    if template is None or role not in template.roles:
        raise invalid_body(f"role {role} does not exist in the room's template")
    data = {
        **_peer_data(room, session, peer),
        "previous_role": peer.role,
        "role": role,
        "role_changed_at": ts_nanos(emu.now()),
    }
    cap = template.max_peers(role)
    if cap is not None and len([p for p in session.connected_peers() if p.role == role]) >= cap:
        emu.emit(room, "role.change.failure", {**data, "error_message": "role limit reached"})
        raise ApiError(400, "role limit reached")
    peer.role = role
    emu.emit(room, "role.change.success", data)


async def remove_peers(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room, session = _live_session(emu, request.path_params["room_id"])
    body = await json_body(request)
    peer_id, role = opt_str(body, "peer_id"), opt_str(body, "role")
    reason = opt_str(body, "reason") or ""
    if peer_id:
        targets = [connected_peer(emu, room, peer_id)]
    elif role:
        targets = [p for p in session.connected_peers() if p.role == role]
    else:
        raise invalid_body("peer_id or role is required")
    if not targets:
        raise ApiError(404, "peer not found")
    for peer in targets:
        leave_peer(emu, room, peer, reason="peer kicked", message=reason)
    return ok({"message": "peer remove request submitted"})


async def send_message(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    _live_session(emu, request.path_params["room_id"])
    body = await json_body(request)
    if not opt_str(body, "message"):
        raise invalid_body("message is required")
    return ok({"message": "message sent"})


async def end_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room, session = _live_session(emu, request.path_params["room_id"])
    body = await json_body(request)
    reason = opt_str(body, "reason") or ""
    lock = bool(opt_bool(body, "lock"))
    for peer in session.connected_peers():
        leave_peer(
            emu, room, peer, reason="server removed peer", message=reason, close_when_empty=False
        )
    close_session(emu, room, session, stream_reason="client request")
    if lock:
        room.enabled, room.updated_at = False, emu.now()
    emu.emit(room, "room.end.success", _room_end_data(room, session, reason=reason, lock=lock))
    return ok({"message": "session is ending"})


def _room_end_data(room: Room, session: Session, *, reason: str, lock: bool) -> dict[str, Any]:
    return {
        **room_fields(room, session),
        "peer_id": "",
        "user_id": "",
        "user_name": "",
        "role": "",
        "lock_room": lock,
        "reason": reason,
        "source": "api",
        "session_started_at": ts_nanos(session.created_at),
    }


async def list_sessions(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    sessions = list(emu.state.sessions.values())
    if room_id := query.get("room_id"):
        sessions = [s for s in sessions if s.room_id == room_id]
    active = parse_bool_query(query, "active")
    if active is not None:
        sessions = [s for s in sessions if s.active == active]
    page = paginate(newest_first(sessions), lambda s: s.id, query)
    return ok(page.to_json(Session.to_json))


async def get_session(request: Request) -> JSONResponse:
    session = emulator_of(request).state.sessions.get(request.path_params["session_id"])
    if session is None:
        raise ApiError(404, "Error: Session not found")
    return ok(session.to_json())


routes = [
    Route("/active-rooms/{room_id}", get_active_room, methods=["GET"]),
    Route("/active-rooms/{room_id}/peers", list_active_peers, methods=["GET"]),
    Route("/active-rooms/{room_id}/peers/{peer_id}", get_active_peer, methods=["GET"]),
    Route("/active-rooms/{room_id}/peers/{peer_id}", update_peer, methods=["POST"]),
    Route("/active-rooms/{room_id}/remove-peers", remove_peers, methods=["POST"]),
    Route("/active-rooms/{room_id}/send-message", send_message, methods=["POST"]),
    Route("/active-rooms/{room_id}/end-room", end_room, methods=["POST"]),
    Route("/sessions", list_sessions, methods=["GET"]),
    Route("/sessions/{session_id}", get_session, methods=["GET"]),
]
