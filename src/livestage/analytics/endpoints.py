"""The read side as JSON: an influencer's own streams; every stream and the audit log for
admins. And `/metrics`, the product's figures for Prometheus (`analytics/metrics.py`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from livestage.accounts.auth import CurrentAdmin, CurrentInfluencer
from livestage.analytics.auth import MetricsReader
from livestage.analytics.metrics import scrape
from livestage.analytics.schemas import StreamAnalytics
from livestage.analytics.service import analytics as analytics_service
from livestage.audit.schemas import AuditEntryRead, AuditPage
from livestage.audit.service import audit as audit_service
from livestage.streams.schemas import StreamRead
from livestage.web.deps import DbSession, ReadSessions
from livestage.web.errors import ERROR_RESPONSES

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)
StatusFilter = Annotated[str | None, Query(pattern="^(starting|live|ended|failed)$")]
# Bounded so a huge offset is a 422, not an integer the database cannot take.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/api/streams/mine")
async def my_streams(user: CurrentInfluencer, session: DbSession) -> list[StreamRead]:
    return await analytics_service.my_streams(session, user)


@router.get("/api/streams/mine/{stream_id}")
async def my_stream(
    user: CurrentInfluencer, session: DbSession, stream_id: uuid.UUID
) -> StreamAnalytics:
    return await analytics_service.detail(session, stream_id, owner=user)


@router.get("/api/admin/streams", tags=["admin: streams"])
async def all_streams(
    _admin: CurrentAdmin,
    session: DbSession,
    status: StatusFilter = None,
    handle: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[StreamRead]:
    return await analytics_service.list_streams(
        session, status=status, handle=handle, limit=limit, offset=offset
    )


@router.get("/api/admin/streams/{stream_id}", tags=["admin: streams"])
async def stream_detail(
    _admin: CurrentAdmin, session: DbSession, stream_id: uuid.UUID
) -> StreamAnalytics:
    return await analytics_service.detail(session, stream_id)


@router.get("/api/admin/audit", tags=["admin: audit"])
async def list_audit(
    _admin: CurrentAdmin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> AuditPage:
    rows, total = await audit_service.list(session, action=action, limit=limit, offset=offset)
    return AuditPage(total=total, items=[AuditEntryRead.model_validate(r) for r in rows])


@router.get("/metrics", include_in_schema=False)
async def metrics(_reader: MetricsReader, reads: ReadSessions) -> Response:
    """Prometheus: the streams and viewers of the whole cluster, and the counters of every
    process (see `analytics/metrics.py`)."""
    return Response(await scrape(reads), media_type=CONTENT_TYPE_LATEST)
