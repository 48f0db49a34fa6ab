"""A 100ms that hangs, for the tests that prove nobody waits behind it (go-live, End Stream,
the reconciler, room codes): an emulator of the test's own, the production timeout, retries and
deadline, a signed-in creator, and timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from livestage.app import AppState
from livestage.models import AuditLog
from tests.support.emulator import EmulatorHandle, StartEmulator, wait_until
from tests.support.fixtures import InfluencerAccount, create_influencer, login_influencer

START = {"title": "Friday night set", "description": "Requests welcome"}
# 100ms answering after this long: each call outlasts the client's 10 s timeout, so without
# one deadline the 4 tries of one call take 40 s and more.
SLOW_100MS_SECONDS = 30
ANSWER_WITHIN_SECONDS = 15.0
# Generous for a shared CI machine, far below the 12 s of 100ms calls they must not wait for.
UNBLOCKED_WITHIN_SECONDS = 3.0
T = TypeVar("T")


@pytest.fixture
def hms(start_emulator: StartEmulator) -> EmulatorHandle:
    """A 100ms emulator of this test's own: it stops with the test, so a call it still holds
    cannot reach the next test's emulator."""
    return start_emulator()


@pytest.fixture
def settings_overrides(hms: EmulatorHandle) -> dict[str, Any]:
    # The production timeout, retries and go-live deadline (their defaults).
    return {
        "hms_access_key": hms.access_key,
        "hms_app_secret": hms.app_secret,
        "hms_api_url": hms.api_url,
        "hms_auth_url": hms.auth_url,
        "worker_enabled": False,
    }


def client_for(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def alice(app: FastAPI, creator: InfluencerAccount) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "198.51.100.1") as client:
        await login_influencer(client, creator)
        yield client


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def held(hms: EmulatorHandle) -> None:
    """Return once 100ms holds a call (the queued fault was taken)."""
    queued = hms.control.faults()
    await asyncio.to_thread(wait_until, lambda: hms.control.faults() != queued)


async def audit(ctx: AppState, action: str) -> list[AuditLog]:
    async with ctx.database.sessionmaker() as session:
        return list(await session.scalars(select(AuditLog).where(AuditLog.action == action)))
