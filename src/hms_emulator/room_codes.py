"""`/v2/room-codes` and the auth host's room-code exchange (`POST /auth/v2/token`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_emulator.body import json_body, ok, opt_str
from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.rooms import room_or_404
from hms_emulator.runtime import Emulator, emulator_of
from hms_emulator.state import (
    Room,
    RoomCode,
    new_room_code,
    new_uuid,
    paginate,
    parse_bool_query,
    ts,
)
from hms_emulator.tokens import mint_auth_token

MAX_CODES_PER_ROOM = 100


def _usable_room(emu: Emulator, room_id: str) -> Room:
    room = room_or_404(emu, room_id)
    if not room.enabled:
        raise ApiError(403, "Room is disabled")
    return room


def _template_roles(emu: Emulator, room: Room) -> list[str]:
    template = emu.state.templates.get(room.template_id)
    return list(template.roles) if template else []


def _check_capacity(emu: Emulator, room: Room, wanted: int) -> None:
    if len(emu.state.codes_of(room.id)) + wanted > MAX_CODES_PER_ROOM:
        raise ApiError(400, "Room code limit reached", [f"at most {MAX_CODES_PER_ROOM} per room"])


def _new_code(emu: Emulator, room: Room, role: str) -> RoomCode:
    code = new_room_code()
    while code in emu.state.room_codes:
        code = new_room_code()
    now = emu.now()
    room_code = RoomCode(code, room.id, role, now, now)
    emu.state.room_codes[code] = room_code
    return room_code


async def create_for_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = _usable_room(emu, request.path_params["room_id"])
    roles = _template_roles(emu, room)
    _check_capacity(emu, room, len(roles))
    for stale in emu.state.codes_of(room.id):
        if stale.role not in roles and stale.enabled:
            stale.enabled, stale.updated_at = False, emu.now()
    created = [_new_code(emu, room, role) for role in roles]
    return ok({"data": [c.to_json() for c in created]})


async def create_for_role(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = _usable_room(emu, request.path_params["room_id"])
    role = request.path_params["role"]
    if role not in _template_roles(emu, room):
        raise ApiError(404, "Role not found")
    _check_capacity(emu, room, 1)
    return ok(_new_code(emu, room, role).to_json())


async def list_for_room(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    room = _usable_room(emu, request.path_params["room_id"])
    codes = emu.state.codes_of(room.id)
    if role := query.get("role"):
        codes = [c for c in codes if c.role == role]
    enabled = parse_bool_query(query, "enabled")
    if enabled is not None:
        codes = [c for c in codes if c.enabled == enabled]
    return ok(paginate(codes, lambda c: c.code, query).to_json(RoomCode.to_json))


async def update_code(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    body = await json_body(request)
    if set(body) - {"code", "enabled"}:
        raise invalid_body("only code and enabled can be set")
    code, enabled = body.get("code"), body.get("enabled")
    if not isinstance(code, str) or not isinstance(enabled, bool):
        raise invalid_body("code must be a string and enabled a boolean")
    room_code = emu.state.room_codes.get(code.lower())
    if room_code is None:
        raise ApiError(404, "Code not found")
    room = emu.state.rooms.get(room_code.room_id)
    if enabled and (room is None or room_code.role not in _template_roles(emu, room)):
        raise ApiError(403, "Code can not be enabled (role/room does not exist)")
    room_code.enabled, room_code.updated_at = enabled, emu.now()
    return ok(room_code.to_json())


async def exchange_code(request: Request) -> JSONResponse:
    """The auth host: a room code (plus optional user id) for an auth token, no credentials."""
    emu = emulator_of(request)
    body = await json_body(request)
    code = opt_str(body, "code")
    user_id = opt_str(body, "user_id") or new_uuid()
    if not code:
        raise ApiError(400, "code is required")
    room_code = emu.state.room_codes.get(code.strip().lower())
    room = emu.state.rooms.get(room_code.room_id) if room_code else None
    if room_code is None or room is None:
        raise ApiError(404, "Room code does not exist")
    if not room_code.enabled or not room.enabled:
        raise ApiError(403, "room is currently inactive")
    return ok(_token_reply(emu, room_code, user_id))


def _token_reply(emu: Emulator, room_code: RoomCode, user_id: str) -> dict[str, Any]:
    token, expires_at = mint_auth_token(
        emu.config,
        room_id=room_code.room_id,
        role=room_code.role,
        user_id=user_id,
        now=emu.now(),
    )
    return {"token": token, "expiresAt": ts(expires_at)}


routes = [
    Route("/room-codes/room/{room_id}", create_for_room, methods=["POST"]),
    Route("/room-codes/room/{room_id}", list_for_room, methods=["GET"]),
    Route("/room-codes/room/{room_id}/role/{role}", create_for_role, methods=["POST"]),
    Route("/room-codes/code", update_code, methods=["POST"]),
]

auth_routes = [Route("/v2/token", exchange_code, methods=["POST"])]
