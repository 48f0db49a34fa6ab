from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from livestage.audit.service import audit as audit_service
from livestage.influencers.schemas import AuditEntryRead, AuditPage
from livestage.web.deps import CurrentAdmin, DbSession
from livestage.web.templating import render

api = APIRouter(prefix="/api/admin/audit", tags=["admin: audit"])
pages = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@api.get("")
async def list_audit(
    _admin: CurrentAdmin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    rows, total = await audit_service.list(session, action=action, limit=limit, offset=offset)
    return AuditPage(total=total, items=[AuditEntryRead.model_validate(r) for r in rows])


@pages.get("/admin/audit")
async def audit_page(
    request: Request,
    _admin: CurrentAdmin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    rows, total = await audit_service.list(
        session, action=action or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    context = {
        "entries": rows,
        "total": total,
        "page": page,
        "action": action or "",
        "pages": max(1, -(-total // PAGE_SIZE)),
    }
    return render(request, "admin/audit.html", context)
