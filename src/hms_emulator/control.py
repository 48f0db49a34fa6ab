"""`/_emulator/*`: simulated peers, faults and logs for tests. Emulator-only, no auth.

Besides single peers: `POST rooms/{room_id}/script` (many joins/leaves at explicit times, see
`script`), `GET rooms/{room_id}/ground-truth[?session_id=]` (viewer statistics, see
`ground_truth`), `POST|GET|DELETE webhook-chaos` (duplicated, delayed deliveries, see `chaos`)
and `GET webhooks/summary` (how many events are still being delivered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_emulator.body import json_body, ok, opt_dict, opt_str
from hms_emulator.chaos import chaos_from_json
from hms_emulator.config import EmulatorConfig
from hms_emulator.errors import ApiError, invalid_body
from hms_emulator.faults import queued_fault_from_json
from hms_emulator.ground_truth import ground_truth
from hms_emulator.peers import connected_peer, join_peer, leave_peer
from hms_emulator.rooms import room_or_404
from hms_emulator.runtime import emulator_of
from hms_emulator.script import parse_script, run_script
from hms_emulator.tokens import TokenRejected, verify_token


async def add_peer(request: Request) -> JSONResponse:
    """Join a simulated peer; with `token`, check it like the 100ms init endpoint would."""
    emu = emulator_of(request)
    room = room_or_404(emu, request.path_params["room_id"])
    body = await json_body(request)
    user_id, role = opt_str(body, "user_id"), opt_str(body, "role")
    if (token := opt_str(body, "token")) is not None:
        claims = _check_join_token(emu.config, token, emu.now(), room.id)
        if role is not None and role != claims.get("role"):
            raise ApiError(401, "token role does not match the requested role")
        user_id, role = user_id or str(claims.get("user_id") or ""), str(claims["role"])
    if not user_id or not role:
        raise invalid_body("user_id and role are required (or a token carrying them)")
    name = opt_str(body, "name") or user_id
    metadata = opt_str(body, "metadata") or ""
    peer = join_peer(emu, room, user_id=user_id, role=role, name=name, metadata=metadata)
    return ok({**peer.to_active_json(), "session_id": peer.session_id}, status=201)


def _check_join_token(
    config: EmulatorConfig, token: str, now: datetime, room_id: str
) -> dict[str, Any]:
    try:
        claims = verify_token(token, config, now=now, kind="app")
    except TokenRejected as exc:
        raise ApiError(401, exc.reason) from None
    if claims.get("room_id") != room_id:
        raise ApiError(401, "token is for another room")
    if not isinstance(claims.get("role"), str):
        raise ApiError(401, "token has no role")
    return claims


async def remove_peer(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = room_or_404(emu, request.path_params["room_id"])
    peer = connected_peer(emu, room, request.path_params["peer_id"])
    reason = request.query_params.get("reason") or "client request"
    leave_peer(emu, room, peer, reason=reason, message=request.query_params.get("message", ""))
    return ok({"id": peer.id, "left": True})


async def script(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    room = room_or_404(emu, request.path_params["room_id"])
    ops = parse_script(await json_body(request))
    return ok(run_script(emu, room, ops), status=201)


async def room_ground_truth(request: Request) -> JSONResponse:
    """`{"room_id", "data": [per session, oldest first]}`; `session_id` narrows to one (or 404)."""
    emu = emulator_of(request)
    room = room_or_404(emu, request.path_params["room_id"])
    sessions = [s for s in emu.state.sessions.values() if s.room_id == room.id]
    if session_id := request.query_params.get("session_id"):
        sessions = [s for s in sessions if s.id == session_id]
        if not sessions:
            raise ApiError(404, "Error: Session not found")
    return ok({"room_id": room.id, "data": [ground_truth(s) for s in sessions]})


async def set_webhook_chaos(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    emu.webhooks.set_chaos(chaos_from_json(await json_body(request)))
    return await get_webhook_chaos(request)


async def get_webhook_chaos(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    chaos = emu.webhooks.chaos
    return ok({"chaos": chaos.to_json() if chaos else None, "plan": emu.state.chaos_plan})


async def clear_webhook_chaos(request: Request) -> JSONResponse:
    emulator_of(request).webhooks.set_chaos(None)
    return ok({"chaos": None})


async def webhook_summary(request: Request) -> JSONResponse:
    deliveries = emulator_of(request).state.deliveries.values()
    counts = {"success": 0, "failed": 0, "pending": 0}
    for record in deliveries:
        counts[record.status] += 1
    in_flight = sum(r.in_flight for r in deliveries)
    return ok({"events": len(deliveries), **counts, "deliveries_in_flight": in_flight})


async def add_fault(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    body = await json_body(request)
    queued = queued_fault_from_json(body, default_timeout=emu.config.timeout_fault_seconds)
    emu.faults.add(queued)
    return ok(queued.to_json(), status=201)


async def list_faults(request: Request) -> JSONResponse:
    return ok({"data": emulator_of(request).faults.to_json()})


async def clear_faults(request: Request) -> JSONResponse:
    emulator_of(request).faults.clear()
    return ok({"data": []})


async def webhooks(request: Request) -> JSONResponse:
    attempts = emulator_of(request).state.webhook_attempts
    return ok({"data": [a.to_json() for a in attempts]})


async def events(request: Request) -> JSONResponse:
    return ok({"data": emulator_of(request).state.events})


async def requests_log(request: Request) -> JSONResponse:
    records = emulator_of(request).state.requests
    return ok({"data": [r.to_json() for r in records]})


async def set_workspace_webhook(request: Request) -> JSONResponse:
    """Stand-in for the dashboard setting (there is no 100ms API for the workspace webhook)."""
    emu = emulator_of(request)
    body = await json_body(request)
    headers = opt_dict(body, "headers") or {}
    emu.webhooks.workspace_url = opt_str(body, "url")
    emu.webhooks.workspace_headers = {str(k): str(v) for k, v in headers.items()}
    return ok({"url": emu.webhooks.workspace_url, "headers": emu.webhooks.workspace_headers})


async def info(request: Request) -> JSONResponse:
    config = emulator_of(request).config
    return ok(
        {
            "access_key": config.access_key,
            "customer_id": config.customer_id,
            "app_id": config.app_id,
            "default_template_id": config.default_template_id,
        }
    )


async def reset(request: Request) -> JSONResponse:
    await emulator_of(request).reset()
    return ok({"reset": True})


routes = [
    Route("/rooms/{room_id}/peers", add_peer, methods=["POST"]),
    Route("/rooms/{room_id}/peers/{peer_id}", remove_peer, methods=["DELETE"]),
    Route("/rooms/{room_id}/script", script, methods=["POST"]),
    Route("/rooms/{room_id}/ground-truth", room_ground_truth, methods=["GET"]),
    Route("/webhook-chaos", set_webhook_chaos, methods=["POST"]),
    Route("/webhook-chaos", get_webhook_chaos, methods=["GET"]),
    Route("/webhook-chaos", clear_webhook_chaos, methods=["DELETE"]),
    Route("/webhooks/summary", webhook_summary, methods=["GET"]),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", list_faults, methods=["GET"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/webhooks", webhooks, methods=["GET"]),
    Route("/events", events, methods=["GET"]),
    Route("/requests", requests_log, methods=["GET"]),
    Route("/workspace-webhook", set_workspace_webhook, methods=["POST"]),
    Route("/info", info, methods=["GET"]),
    Route("/reset", reset, methods=["POST"]),
]
