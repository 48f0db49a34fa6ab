"""Health, readiness, metrics and the landing page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from livestage.web.deps import Ctx, OptionalUserSession
from livestage.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Response:
    try:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
    provider = ctx.provider.name if ctx.provider else "none"
    return JSONResponse({"status": "ok", "database": "ok", "provider": provider})


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/")
async def home(request: Request, user_session: OptionalUserSession) -> Response:
    return render(request, "home.html")
