"""The read side as pages: /admin/streams (every stream), /influencer/streams (one's own) and
/admin/audit (the audit log).

Handlers stay thin: one `analytics_service` call, then a template. Presentation helpers are
Jinja filters registered here, at import, on the shared environment: `duration` (seconds or a
timedelta as `1:02:03` / `2:05`), `when_precise` (a UTC instant to the second), `time_of_day`
(`10:24:13`, with the date only when it differs from a reference day) and `viewers_chart` (a
stream's per-minute samples as the inline SVG of `analytics.chart`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from markupsafe import Markup
from starlette.responses import Response

from livestage.accounts.auth import CurrentAdmin, CurrentInfluencer
from livestage.analytics.chart import viewers_chart
from livestage.analytics.schemas import SampleRead
from livestage.analytics.service import analytics as analytics_service
from livestage.audit.service import audit as audit_service
from livestage.web.deps import DbSession, Now
from livestage.web.templating import render, templates

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("starting", "live", "ended", "failed")
StatusFilter = Annotated[str, Query(pattern=f"^(|{'|'.join(STATUSES)})$")]
HandleFilter = Annotated[str, Query(max_length=40)]
# Opaque: the `next_cursor` of the page before (bounded here; decoded by models/keyset.py).
CursorParam = Annotated[str, Query(max_length=200)]


def format_duration(value: float | int | timedelta | None) -> str:
    """`1:02:03` from an hour up, `2:05` below it; "—" when unknown."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_when_precise(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_time_of_day(value: datetime | None, day: datetime | None = None) -> str:
    """`10:24:13` on the same UTC day as `day` (a stream's start), the full date otherwise."""
    if value is None:
        return "—"
    if day is not None and value.date() == day.date():
        return value.strftime("%H:%M:%S")
    return format_when_precise(value)


def chart_markup(
    samples: Sequence[SampleRead], title: str = "Viewers over time", chart_id: str = "viewers-chart"
) -> Markup:
    """The chart as markup Jinja will not escape again (every text in it is escaped)."""
    series = [(s.minute, s.viewers) for s in samples]
    return Markup(viewers_chart(series, title=title, chart_id=chart_id))


templates.env.filters["duration"] = format_duration
templates.env.filters["when_precise"] = format_when_precise
templates.env.filters["time_of_day"] = format_time_of_day
templates.env.filters["viewers_chart"] = chart_markup


@router.get("/admin/streams")
async def admin_streams_page(
    request: Request,
    _admin: CurrentAdmin,
    session: DbSession,
    now: Now,
    status: StatusFilter = "",
    handle: HandleFilter = "",
    cursor: CursorParam = "",
) -> Response:
    result = await analytics_service.list_streams(
        session,
        status=status or None,
        handle=handle.strip() or None,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    context = {
        "streams": result.items,
        "next_cursor": result.next_cursor,
        "paged": bool(cursor),
        "filters": {"status": status, "handle": handle.strip()},
        "statuses": STATUSES,
        "now": now,
        "audience": "admin",
    }
    return render(request, "analytics/admin_streams.html", context)


@router.get("/admin/streams/{stream_id}")
async def admin_stream_page(
    request: Request,
    _admin: CurrentAdmin,
    session: DbSession,
    now: Now,
    stream_id: uuid.UUID,
    peers: CursorParam = "",
) -> Response:
    detail = await analytics_service.detail(session, stream_id, peers_cursor=peers or None)
    context = {"detail": detail, "now": now, "audience": "admin", "back": "/admin/streams"}
    return render(request, "analytics/stream.html", context)


@router.get("/influencer/streams")
async def my_streams_page(
    request: Request,
    user: CurrentInfluencer,
    session: DbSession,
    now: Now,
    cursor: CursorParam = "",
) -> Response:
    result = await analytics_service.my_streams(
        session, user, limit=PAGE_SIZE, cursor=cursor or None
    )
    context = {
        "streams": result.items,
        "next_cursor": result.next_cursor,
        "paged": bool(cursor),
        "now": now,
        "audience": "influencer",
    }
    return render(request, "analytics/my_streams.html", context)


@router.get("/influencer/streams/{stream_id}")
async def my_stream_page(
    request: Request,
    user: CurrentInfluencer,
    session: DbSession,
    now: Now,
    stream_id: uuid.UUID,
    peers: CursorParam = "",
) -> Response:
    detail = await analytics_service.detail(
        session, stream_id, owner=user, peers_cursor=peers or None
    )
    context = {
        "detail": detail,
        "now": now,
        "audience": "influencer",
        "back": "/influencer/streams",
    }
    return render(request, "analytics/stream.html", context)


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    _admin: CurrentAdmin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: CursorParam = "",
) -> Response:
    rows, next_cursor = await audit_service.page(
        session, action=action or None, limit=PAGE_SIZE, cursor=cursor or None
    )
    context = {
        "entries": rows,
        "next_cursor": next_cursor,
        "paged": bool(cursor),
        "action": action or "",
    }
    return render(request, "admin/audit.html", context)
