"""End Stream while 100ms's end-room fails: once 100ms recovers, the reconciler's own periodic
run closes the room at 100ms, with no one clicking again (issue 12, item 13)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import pytest_asyncio

from livestage.app import AppState
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import InfluencerAccount, create_influencer, login_influencer

pytestmark = pytest.mark.asyncio
RECONCILE_SECONDS = 0.2


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "hms_max_retries": 0,
        # The worker runs as in production, only its reconciler ticks faster.
        "worker_enabled": True,
        "reconcile_interval_seconds": RECONCILE_SECONDS,
    }


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


async def _until(check: Any, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time limit"
        await asyncio.sleep(0.05)


async def test_the_room_is_closed_by_the_reconciler_alone_once_100ms_recovers(
    client: httpx.AsyncClient,
    ctx: AppState,
    creator: InfluencerAccount,
    emulator: EmulatorHandle,
) -> None:
    assert ctx.provider is not None
    provider = ctx.provider
    await login_influencer(client, creator)
    stream = (await client.post("/api/streams", json={"title": "Late show"})).json()["stream"]
    room_id = stream["room_id"]
    end_room = f"/v2/active-rooms/{room_id}/end-room"
    emulator.control.join_peer(room_id, user_id="host", role="broadcaster")
    await client.post("/api/streams/current/joined")

    emulator.control.queue_fault(end_room, kind="status", status=500, count=1000)
    ended = await client.post("/api/streams/current/end")
    assert ended.json()["status"] == "ended"
    assert ended.json()["room_close_pending_since"] is not None

    # While 100ms keeps failing, the reconciler keeps trying and the room stays open.
    async def tried_again() -> bool:
        return len(emulator.control.requests(path_prefix=end_room)) >= 3

    await _until(tried_again)
    assert await provider.get_active_session(room_id) is not None
    mine = (await client.get("/api/streams/mine")).json()
    assert mine[0]["room_close_pending_since"] is not None

    emulator.control.http.delete("/faults").raise_for_status()

    async def closed() -> bool:
        return await provider.get_active_session(room_id) is None

    await _until(closed)

    async def settled() -> bool:
        found = (await client.get("/api/streams/mine")).json()[0]
        return bool(found["status"] == "ended" and found["room_close_pending_since"] is None)

    await _until(settled)
