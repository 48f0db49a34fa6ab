"""100ms webhooks in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from livestage.errors import BadRequest, LivestageError, PayloadTooLarge, UnsupportedMediaType
from livestage.tracking.deps import ingestion_of
from livestage.tracking.events import EnvelopeError, decode_envelope
from livestage.tracking.verification import (
    WebhookPolicy,
    WebhookVerificationError,
    verify_sender,
    verify_signature,
)
from livestage.web.bodies import read_within
from livestage.web.deps import client_ip
from livestage.web.errors import ERROR_RESPONSES
from livestage.web.routing import RawAnswer, RawRequest, RawRoute

MAX_WEBHOOK_BYTES = 1_000_000


async def hms_webhook(raw: RawRequest) -> RawAnswer:
    """Verify → store raw (once per event id, committed) → 200. The worker processes it.

    100ms sends events in bursts (a flash crowd is one per join and leave), so this is a
    `RawRoute`, like the viewer join: no session cookie, no CSRF (100ms authenticates with the
    secret header), no dependency injection, and where the app's front door serves it, none of
    FastAPI's or Starlette's layers."""
    request = raw.starlette()
    ingestion = ingestion_of(request)
    body = await read_webhook(request, ingestion.policy)
    try:
        payload, _ = decode_envelope(body)
    except EnvelopeError as error:
        raise BadRequest(f"not a 100ms webhook event: {error}") from error
    stored = await ingestion.store("hms", payload)
    return _ACKNOWLEDGED[stored], []


# The two answers, rendered once, as JSONResponse renders them.
_ACKNOWLEDGED = {
    stored: bytes(JSONResponse({"status": "ok", "duplicate": not stored}).body)
    for stored in (True, False)
}


hms_webhook_route = RawRoute(
    "/webhooks/100ms",
    hms_webhook,
    methods=["POST"],
    tags=["tracking"],
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "A 100ms event, with the secret in `X-Livestage-Webhook-Secret`.",
        }
    },
)


async def read_webhook(request: Request, policy: WebhookPolicy) -> bytes:
    """The body of a request from 100ms. A stranger is refused before any byte is read, and no
    more than MAX_WEBHOOK_BYTES are ever read, whatever Content-Length says."""
    try:
        verify_sender(policy, request.headers, client_ip(request))
        _check_media_type(request)
        body = await read_within(request, MAX_WEBHOOK_BYTES, _webhook_too_large)
        verify_signature(policy, request.headers, body)
    except WebhookVerificationError as error:
        raise LivestageError(error.message, status_code=error.status_code) from error
    return body


def _check_media_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("a 100ms webhook is sent as application/json")


def _webhook_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"webhook body too large (at most {MAX_WEBHOOK_BYTES} bytes)")
