"""100ms webhooks in."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from livestage.errors import BadRequest, LivestageError
from livestage.tracking.deps import IngestionDep
from livestage.tracking.events import EnvelopeError, parse_envelope
from livestage.tracking.verification import WebhookVerificationError, verify_webhook
from livestage.web.deps import client_ip

# No session cookie, no CSRF: 100ms authenticates with the secret header instead.
router = APIRouter(tags=["tracking"])
MAX_WEBHOOK_BYTES = 1_000_000


@router.post("/webhooks/100ms")
async def hms_webhook(request: Request, ingestion: IngestionDep) -> Response:
    """Verify → store raw (once per event id, committed) → 200. The worker processes it."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise BadRequest("webhook body too large")
    try:
        verify_webhook(ingestion.policy, request.headers, body, client_ip(request))
        payload = json.loads(body)
        parse_envelope(payload)
    except WebhookVerificationError as error:
        raise LivestageError(error.message, status_code=error.status_code) from error
    except (ValueError, EnvelopeError) as error:
        raise BadRequest(f"not a 100ms webhook event: {error}") from error
    stored = await ingestion.store("hms", payload)
    return JSONResponse({"status": "ok", "duplicate": not stored})
