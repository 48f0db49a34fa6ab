"""Health and readiness (`/metrics` is the read side's: `analytics/endpoints.py`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from redis.asyncio import Redis
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from livestage.db import Database
from livestage.web.deps import DatabaseDep, ProviderDep, RedisDep

router = APIRouter(include_in_schema=False)
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(database: DatabaseDep, redis: RedisDep, provider: ProviderDep) -> Response:
    """Ready when the database answers, and Redis too where livestage runs as a cluster."""
    checks = {"database": await _database_answers(database)}
    if redis is not None:
        checks["redis"] = await _redis_answers(redis)
    ready = all(checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        **{name: "ok" if ok else "unreachable" for name, ok in checks.items()},
        "provider": provider.name if provider else "none",
    }
    return JSONResponse(body, 200 if ready else 503)


async def _database_answers(database: Database) -> bool:
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _redis_answers(redis: Redis) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            return bool(await redis.ping())
    except Exception:
        return False
