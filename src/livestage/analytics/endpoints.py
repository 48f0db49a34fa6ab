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
from livestage.analytics.schemas import StreamAnalytics, StreamPage
from livestage.analytics.service import PEERS_PER_PAGE
from livestage.analytics.service import analytics as analytics_service
from livestage.audit.schemas import AuditEntryRead, AuditPage
from livestage.audit.service import audit as audit_service
from livestage.errors import BadRequest
from livestage.streams.schemas import StreamRead
from livestage.web.deps import DbSession, ReadSessions
from livestage.web.errors import ERROR_RESPONSES

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)
StatusFilter = Annotated[str | None, Query(pattern="^(starting|live|ended|failed)$")]
# Bounded so a huge offset is a 422, not an integer the database cannot take.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=200,
        description="The `X-Next-Cursor` (or `peers_next_cursor`) of the previous page.",
    ),
]
PeersLimit = Annotated[int, Query(ge=1, le=500)]
NEXT_CURSOR = "X-Next-Cursor"


def _with_next(response: Response, page: StreamPage) -> list[StreamRead]:
    """The list stays the body (as it always was); the next page's cursor rides in a header."""
    if page.next_cursor:
        response.headers[NEXT_CURSOR] = page.next_cursor
    return page.items


@router.get("/api/streams/mine")
async def my_streams(
    user: CurrentInfluencer,
    session: DbSession,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorParam = None,
) -> list[StreamRead]:
    page = await analytics_service.my_streams(session, user, limit=limit, cursor=cursor)
    return _with_next(response, page)


@router.get("/api/streams/mine/{stream_id}")
async def my_stream(
    user: CurrentInfluencer,
    session: DbSession,
    stream_id: uuid.UUID,
    peers_cursor: CursorParam = None,
    peers_limit: PeersLimit = PEERS_PER_PAGE,
) -> StreamAnalytics:
    return await analytics_service.detail(
        session, stream_id, owner=user, peers_cursor=peers_cursor, peers_limit=peers_limit
    )


@router.get("/api/admin/streams", tags=["admin: streams"])
async def all_streams(
    _admin: CurrentAdmin,
    session: DbSession,
    response: Response,
    status: StatusFilter = None,
    handle: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
    cursor: CursorParam = None,
) -> list[StreamRead]:
    page = await analytics_service.list_streams(
        session, status=status, handle=handle, limit=limit, offset=offset, cursor=cursor
    )
    return _with_next(response, page)


@router.get("/api/admin/streams/{stream_id}", tags=["admin: streams"])
async def stream_detail(
    _admin: CurrentAdmin,
    session: DbSession,
    stream_id: uuid.UUID,
    peers_cursor: CursorParam = None,
    peers_limit: PeersLimit = PEERS_PER_PAGE,
) -> StreamAnalytics:
    return await analytics_service.detail(
        session, stream_id, peers_cursor=peers_cursor, peers_limit=peers_limit
    )


@router.get("/api/admin/audit", tags=["admin: audit"])
async def list_audit(
    _admin: CurrentAdmin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=10_000_000,
            deprecated=True,
            description="Only 0: any other value is a 400. Page with `cursor` instead.",
        ),
    ] = 0,
    cursor: CursorParam = None,
) -> AuditPage:
    """Newest first, one page after `cursor`. No total: counting the whole log grew with it;
    `has_more` says whether `next_cursor` leads to older entries."""
    if offset:
        # Ignoring it would hand an offset-paging client page one forever.
        raise BadRequest("`offset` is no longer supported here: pass `next_cursor` as `cursor`.")
    rows, next_cursor = await audit_service.page(session, action=action, limit=limit, cursor=cursor)
    return AuditPage(
        items=[AuditEntryRead.model_validate(r) for r in rows],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(_reader: MetricsReader, reads: ReadSessions) -> Response:
    """Prometheus: the streams and viewers of the whole cluster, and the counters of every
    process (see `analytics/metrics.py`)."""
    return Response(await scrape(reads), media_type=CONTENT_TYPE_LATEST)
