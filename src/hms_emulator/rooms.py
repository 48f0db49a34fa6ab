"""`/v2/rooms` and `/v2/templates`."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_emulator.body import (
    json_body,
    ok,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
)
from hms_emulator.config import new_object_id
from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.runtime import Emulator, emulator_of
from hms_emulator.state import (
    Room,
    Template,
    new_uuid,
    newest_first,
    paginate,
    parse_bool_query,
)

ROOM_NAME = re.compile(r"^[A-Za-z0-9.\-:_]+$")
REGIONS = ("in", "us", "eu", "auto")
MAX_SIZE, MAX_LARGE_SIZE = 2500, 20000
MIN_DURATION, MAX_DURATION = 120, 43200


async def create_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    body = await json_body(request)
    name = opt_str(body, "name") or new_uuid()
    _check_name(name)
    room = emu.state.room_by_name(name)
    changes = _room_changes(emu, body, room)
    if room is None:
        room = _new_room(emu, name, changes.pop("template", None))
        emu.state.rooms[room.id] = room
    _apply(emu, room, changes)
    return ok(room.to_json())


async def update_room(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = room_or_404(emu, request.path_params["room_id"])
    body = await json_body(request)
    changes = _room_changes(emu, body, room)
    name = opt_str(body, "name")
    if name is not None and name != room.name:
        _check_name(name)
        other = emu.state.room_by_name(name)
        if other is not None and other.id != room.id:
            raise ApiError(400, "Error: room name already exists")
        changes["name"] = name
    enabled = opt_bool(body, "enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    _apply(emu, room, changes)
    return ok(room.to_json())


async def get_room(request: Request) -> JSONResponse:
    return ok(room_or_404(emulator_of(request), request.path_params["room_id"]).to_json())


async def list_rooms(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    # The docs give `enabled` a default of true.
    enabled = parse_bool_query(query, "enabled")
    enabled = True if enabled is None else enabled
    rooms = [r for r in emu.state.rooms.values() if r.enabled == enabled]
    if name := query.get("name"):
        rooms = [r for r in rooms if r.name.casefold() == name.casefold()]
    if template_id := query.get("template_id"):
        rooms = [r for r in rooms if r.template_id == template_id]
    page = paginate(newest_first(rooms), lambda r: r.id, query)
    return ok(page.to_json(Room.to_json))


def room_or_404(emu: Emulator, room_id: str) -> Room:
    room = emu.state.rooms.get(room_id)
    if room is None:
        raise ApiError(404, "Room not found")
    return room


def _check_name(name: str) -> None:
    if not ROOM_NAME.match(name):
        raise invalid_body("name can only contain a-z, A-Z, 0-9 and . - : _")


def _new_room(emu: Emulator, name: str, template: Template | None) -> Room:
    template = template or emu.state.templates[emu.config.default_template_id]
    now = emu.now()
    return Room(
        id=new_object_id(),
        name=name,
        customer_id=emu.config.customer_id,
        app_id=emu.config.app_id,
        template_id=template.id,
        template_name=template.name,
        region=template.region,
        created_at=now,
        updated_at=now,
    )


def _apply(emu: Emulator, room: Room, changes: dict[str, Any]) -> None:
    template: Template | None = changes.pop("template", None)
    if template is not None:
        room.template_id, room.template_name = template.id, template.name
    for key, value in changes.items():
        setattr(room, key, value)
    room.updated_at = emu.now()


def _room_changes(emu: Emulator, body: dict[str, Any], room: Room | None) -> dict[str, Any]:
    if "template" in body:
        raise invalid_body("template. Use template_id")
    changes: dict[str, Any] = {}
    if (template_id := opt_str(body, "template_id")) is not None:
        if template_id not in emu.state.templates:
            raise ApiError(400, "Error: template not found")
        changes["template"] = emu.state.templates[template_id]
    if (region := opt_str(body, "region")) is not None:
        if region not in REGIONS:
            raise ApiError(400, "Error: region not supported")
        changes["region"] = region
    if (description := opt_str(body, "description")) is not None:
        changes["description"] = description
    if (webhook := opt_dict(body, "webhook")) is not None:
        changes["webhook"] = _webhook(webhook)
    changes.update(_size_changes(body, room))
    return changes


def _size_changes(body: dict[str, Any], room: Room | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    large = opt_bool(body, "large_room")
    if large is not None:
        changes["large_room"] = large
    large = large if large is not None else (room.large_room if room else False)
    if (size := opt_int(body, "size")) is not None:
        if size > MAX_LARGE_SIZE:
            raise invalid_body(f"room size greater than {MAX_LARGE_SIZE}")
        if size > MAX_SIZE and not large:
            raise invalid_body(f"room size greater than {MAX_SIZE}, set large_room flag as true")
        if size < 0:
            raise invalid_body("room size less than 0")
        changes["size"] = size
    if (duration := opt_int(body, "max_duration_seconds")) is not None:
        if duration < MIN_DURATION:
            raise invalid_body(f"max_duration_seconds less than {MIN_DURATION} seconds")
        if duration > MAX_DURATION:
            raise invalid_body(f"max_duration_seconds greater than {MAX_DURATION} seconds")
        changes["max_duration_seconds"] = duration
    return changes


def _webhook(webhook: dict[str, Any]) -> dict[str, Any]:
    url = webhook.get("url")
    headers = webhook.get("headers") or {}
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise invalid_body("webhook.url")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise invalid_body("webhook.headers")
    return {"url": url, "headers": headers}


async def create_template(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    body = await json_body(request)
    name = opt_str(body, "name") or f"template-{new_object_id()[:8]}"
    template = emu.state.template_by_name(name)
    if template is None:
        now = emu.now()
        template = Template(new_object_id(), name, emu.config.customer_id, {}, {}, {}, now, now)
        template.app_id = emu.config.app_id
        emu.state.templates[template.id] = template
    _apply_template(emu, template, body)
    return ok(template.to_json())


async def update_template(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    template = template_or_404(emu, request.path_params["template_id"])
    _apply_template(emu, template, await json_body(request))
    return ok(template.to_json())


async def get_template(request: Request) -> JSONResponse:
    return ok(template_or_404(emulator_of(request), request.path_params["template_id"]).to_json())


async def list_templates(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    templates = newest_first(list(emu.state.templates.values()))
    return ok(paginate(templates, lambda t: t.id, request.query_params).to_json(Template.to_json))


def template_or_404(emu: Emulator, template_id: str) -> Template:
    template = emu.state.templates.get(template_id)
    if template is None:
        raise ApiError(404, "Template not found")
    return template


def _apply_template(emu: Emulator, template: Template, body: dict[str, Any]) -> None:
    """Whole `roles`/`settings`/`destinations` objects replace the stored ones."""
    if (roles := opt_dict(body, "roles")) is not None:
        template.roles = _roles(roles)
    if (settings := opt_dict(body, "settings")) is not None:
        template.settings = settings
    if (destinations := opt_dict(body, "destinations")) is not None:
        template.destinations = destinations
    template.updated_at = emu.now()


def _roles(roles: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, role in roles.items():
        if not isinstance(role, dict) or not ROOM_NAME.match(name):
            raise invalid_body(f"roles.{name}")
        max_peers = role.get("maxPeerCount", 0)
        if not isinstance(max_peers, int) or isinstance(max_peers, bool):
            raise invalid_body(f"roles.{name}.maxPeerCount")
        result[name] = {**role, "name": name, "maxPeerCount": max_peers}
    return result


routes = [
    Route("/rooms", create_room, methods=["POST"]),
    Route("/rooms", list_rooms, methods=["GET"]),
    Route("/rooms/{room_id}", get_room, methods=["GET"]),
    Route("/rooms/{room_id}", update_room, methods=["POST"]),
    Route("/templates", create_template, methods=["POST"]),
    Route("/templates", list_templates, methods=["GET"]),
    Route("/templates/{template_id}", get_template, methods=["GET"]),
    Route("/templates/{template_id}", update_template, methods=["POST"]),
]
