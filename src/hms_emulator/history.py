"""`/v2/analytics/webhooks`: webhook delivery history and replay (100ms analytics API).

The real shapes are only partly documented (reference §2.4, §3.12, §4.3); what the emulator answers:

`GET /v2/analytics/webhooks?start_time=&end_time=&room_id=&status=&event_names=&limit=&page=`
  * `start_time`, `end_time` (required): RFC 3339; an event matches when start ≤ its time ≤ end.
    The event's time is the exact instant it was emitted (its envelope `timestamp` is that
    instant truncated to the second, as 100ms renders it).
  * `room_id`; `event_names`: comma-separated event types (the parameter may also repeat);
    `status`: `all` (default) | `success` | `failed`.
  * `limit` 1..100 (default 50), `page` 1.. (default 1); anything else is 400.
  * Only events that had a webhook target are listed, ordered by event time (then emission).
  → `{"data": [{"id", "event_name", "room_id", "event": <the envelope as first sent>,
     "status", "attempts", "last_status_code", "created_at"}],
     "pagination": {"page", "limit", "total", "total_pages"}}`
  * `status`: `success` once any delivery of the event (any copy, retry or replay) got HTTP 200;
    `failed` when every delivery has finished without one; `pending` while a delivery is still
    under way without a 200 yet (listed only under `status=all`). `attempts` counts every HTTP
    attempt; `last_status_code` is the latest attempt's status (null: no HTTP answer).

`POST /v2/analytics/webhooks/replay` `{"start_time", "end_time", "room_id"?, "event_names"?
  (list or comma string), "status"? ("failed" default | "success" | "all"), "limit"? (1..50000,
  default 50000), "offset"? (default 0)}`
  → `{"workflow_id", "status": "started" | "already_running", "message", "filters"}`; the same
  filters while that replay runs answer `already_running` with its id. In the background the
  matching events (as selected when the call was made) are re-sent through the normal sender
  (custom headers, signature, retries, chaos) as the original envelope plus `"is_replay": true`,
  at `replay_events_per_second` (100ms: 10/s). Replay attempts count towards the event's history.

`GET /v2/analytics/webhooks/replay/{workflow_id}` → `{"workflow_id", "status": "started" |
  "completed", "filters", "total", "sent", "succeeded", "failed", "skipped" (no target),
  "created_at", "completed_at"}`; unknown id → 404.

429 (`rate limit exceeded, retry after 45 seconds`) and 503 come only from queued faults.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_emulator.body import json_body, ok
from hms_emulator.errors import ApiError, invalid_body, invalid_query
from hms_emulator.runtime import Emulator, emulator_of
from hms_emulator.state import (
    EventDelivery,
    ReplayWorkflow,
    new_uuid,
    parse_ts,
)

STATUSES = ("all", "success", "failed")
MAX_REPLAY = 50_000


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    room_id: str | None
    event_names: tuple[str, ...]
    status: str

    def matches(self, record: EventDelivery) -> bool:
        if not self.start <= record.at <= self.end:
            return False
        if self.room_id and record.room_id != self.room_id:
            return False
        if self.event_names and record.envelope["type"] not in self.event_names:
            return False
        return self.status == "all" or record.status == self.status

    def select(self, records: Sequence[EventDelivery]) -> list[EventDelivery]:
        return sorted((r for r in records if self.matches(r)), key=lambda r: r.at)


def _parse_time(raw: object) -> datetime | None:
    return parse_ts(raw) if isinstance(raw, str) else None


def _query_time(query: QueryParams, name: str) -> datetime:
    value = _parse_time(query.get(name))
    if value is None:
        raise invalid_query(name)
    return value


def _body_time(body: dict[str, Any], name: str) -> datetime:
    value = _parse_time(body.get(name))
    if value is None:
        raise invalid_body(f"{name} must be RFC 3339 with a zone")
    return value


def _names(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(n.strip() for value in values for n in value.split(",") if n.strip())


def _query_filters(query: QueryParams) -> Filters:
    start, end = _query_time(query, "start_time"), _query_time(query, "end_time")
    status = query.get("status") or "all"
    if status not in STATUSES:
        raise invalid_query("status")
    if end < start:
        raise invalid_query("end_time")
    names = _names(query.getlist("event_names"))
    return Filters(start, end, query.get("room_id") or None, names, status)


def _int_query(query: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_query(name) from None
    if not low <= value <= high:
        raise invalid_query(name)
    return value


async def list_webhooks(request: Request) -> JSONResponse:
    emu, query = emulator_of(request), request.query_params
    filters = _query_filters(query)
    limit = _int_query(query, "limit", 50, 1, 100)
    page = _int_query(query, "page", 1, 1, 10**9)
    matched = filters.select(list(emu.state.deliveries.values()))
    rows = matched[(page - 1) * limit : page * limit]
    pagination = {
        "page": page,
        "limit": limit,
        "total": len(matched),
        "total_pages": math.ceil(len(matched) / limit),
    }
    return ok({"data": [r.to_history_json() for r in rows], "pagination": pagination})


def _body_filters(body: dict[str, Any]) -> tuple[Filters, int, int]:
    start, end = _body_time(body, "start_time"), _body_time(body, "end_time")
    room_id, status = body.get("room_id"), body.get("status") or "failed"
    if room_id is not None and not isinstance(room_id, str):
        raise invalid_body("room_id")
    if status not in STATUSES:
        raise invalid_body("status must be all, success or failed")
    if end < start:
        raise invalid_body("end_time is before start_time")
    limit, offset = body.get("limit", MAX_REPLAY), body.get("offset", 0)
    if not _is_int(limit) or not 1 <= limit <= MAX_REPLAY:
        raise invalid_body(f"limit must be an integer in 1..{MAX_REPLAY}")
    if not _is_int(offset) or offset < 0:
        raise invalid_body("offset must be a non-negative integer")
    names = _body_names(body.get("event_names"))
    return Filters(start, end, room_id or None, names, status), limit, offset


def _body_names(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return _names([raw])
    if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
        return _names(raw)
    raise invalid_body("event_names must be a list of strings")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _filters_json(
    body: dict[str, Any], filters: Filters, limit: int, offset: int
) -> dict[str, Any]:
    return {
        "start_time": body["start_time"],
        "end_time": body["end_time"],
        "room_id": filters.room_id,
        "event_names": list(filters.event_names),
        "status": filters.status,
        "limit": limit,
        "offset": offset,
    }


async def start_replay(request: Request) -> JSONResponse:
    emu = emulator_of(request)
    body = await json_body(request)
    filters, limit, offset = _body_filters(body)
    described = _filters_json(body, filters, limit, offset)
    running = next(
        (w for w in emu.state.replays.values() if w.status == "started" and w.filters == described),
        None,
    )
    if running is not None:
        message = "a replay with these filters is already running"
        return ok(_started(running, "already_running", message))
    selected = filters.select(list(emu.state.deliveries.values()))[offset : offset + limit]
    workflow = ReplayWorkflow(
        new_uuid(), described, [r.envelope["id"] for r in selected], emu.now()
    )
    emu.state.replays[workflow.id] = workflow
    emu.tasks.spawn(_run_replay(emu, workflow, selected))
    message = f"replay of {len(selected)} webhook events started"
    return ok(_started(workflow, "started", message))


def _started(workflow: ReplayWorkflow, status: str, message: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow.id,
        "status": status,
        "message": message,
        "filters": workflow.filters,
    }


async def _run_replay(
    emu: Emulator, workflow: ReplayWorkflow, records: list[EventDelivery]
) -> None:
    rate = emu.config.replay_events_per_second
    pending: list[asyncio.Task[object]] = []
    for index, record in enumerate(records):
        if rate and index:
            await asyncio.sleep(1 / rate)
        copies = emu.webhooks.replay(record)
        if not copies:
            workflow.skipped += 1
            continue
        workflow.sent += 1
        # Owned by the emulator's task set, so a reset stops them with everything else.
        pending.append(emu.tasks.spawn(_settle(workflow, copies)))
    await asyncio.gather(*pending)
    workflow.status, workflow.completed_at = "completed", emu.now()


async def _settle(workflow: ReplayWorkflow, copies: list[Coroutine[Any, Any, bool]]) -> None:
    results = await asyncio.gather(*copies)
    if any(results):
        workflow.succeeded += 1
    else:
        workflow.failed += 1


async def replay_status(request: Request) -> JSONResponse:
    workflow = emulator_of(request).state.replays.get(request.path_params["workflow_id"])
    if workflow is None:
        raise ApiError(404, "workflow not found")
    return ok(workflow.to_json())


routes = [
    Route("/analytics/webhooks", list_webhooks, methods=["GET"]),
    Route("/analytics/webhooks/replay", start_replay, methods=["POST"]),
    Route("/analytics/webhooks/replay/{workflow_id}", replay_status, methods=["GET"]),
]
