"""100ms webhooks in, live updates out (SSE)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from livestage.errors import BadRequest, LivestageError, NotFound
from livestage.influencers.repository import InfluencerRepository
from livestage.streams.repository import StreamRepository
from livestage.tracking.broker import sse_frame
from livestage.tracking.events import EnvelopeError, parse_envelope
from livestage.tracking.updates import live_update
from livestage.tracking.verification import WebhookVerificationError, verify_webhook
from livestage.web.deps import Ctx, DbSession, client_ip
from livestage.web.sse import EventStream

router = APIRouter(tags=["tracking"])
# No session cookie, no CSRF: 100ms authenticates with the secret header instead.
webhook_router = APIRouter(tags=["tracking"])
MAX_WEBHOOK_BYTES = 1_000_000
# Each event stream ends after a while and the browser reconnects (EventSource does so by
# itself): connections never pin a worker that is shutting down or being redeployed.
STREAM_LIFETIME_SECONDS = 300.0
RECONNECT_MILLISECONDS = 2000


@webhook_router.post("/webhooks/100ms")
async def hms_webhook(request: Request, ctx: Ctx) -> Response:
    """Verify → store raw (once per event id, committed) → 200. The worker processes it."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise BadRequest("webhook body too large")
    try:
        verify_webhook(ctx.webhook_policy, request.headers, body, client_ip(request))
        payload = json.loads(body)
        parse_envelope(payload)
    except WebhookVerificationError as error:
        raise LivestageError(error.message, status_code=error.status_code) from error
    except (ValueError, EnvelopeError) as error:
        raise BadRequest(f"not a 100ms webhook event: {error}") from error
    stored = await ctx.inbox.store("hms", payload)
    if stored and ctx.worker is not None:
        ctx.worker.notify()
    return JSONResponse({"status": "ok", "duplicate": not stored})


async def _snapshot(session: DbSession, handle: str) -> dict[str, Any]:
    influencer = await InfluencerRepository(session).get_by_handle(handle.lower())
    if influencer is None:
        raise NotFound(f"No influencer with the handle @{handle[:40]}.")
    repository = StreamRepository(session)
    stream = await repository.get_active(influencer.id) or await repository.get_latest(
        influencer.id
    )
    if stream is None:
        return {"handle": influencer.handle, "status": "offline", "viewers": 0, "peak": 0}
    return live_update(stream)


@router.get("/api/live/{handle}")
async def live_state(handle: str, session: DbSession) -> dict[str, Any]:
    """The stream's status and viewer count right now."""
    return await _snapshot(session, handle)


@router.get("/api/live/{handle}/events")
async def live_events(handle: str, session: DbSession, ctx: Ctx) -> Response:
    """Server-sent events: the current state, then every change (status, viewer count)."""
    first = await _snapshot(session, handle)
    retry = f"retry: {RECONNECT_MILLISECONDS}\n".encode()
    return EventStream(
        retry + sse_frame(first),
        partial(ctx.broker.subscribe, first["handle"]),
        lifetime=STREAM_LIFETIME_SECONDS,
    )
