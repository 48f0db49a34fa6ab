"""`/metrics`: the product's own figures, from the database and the inbox; SQLite and
PostgreSQL. Counters are process-wide, so each is read before and after."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio

from livestage.app import AppState
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import FakeClock, InfluencerAccount, create_influencer, login_influencer
from tests.support.hms_events import SessionScript
from tests.support.prometheus import Samples, parse, value

pytestmark = pytest.mark.asyncio
RECEIVED = "livestage_webhook_events_received_total"
APPLIED = "livestage_webhook_events_applied_total"
LAG = "livestage_webhook_apply_lag_seconds_count"


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "worker_enabled": False,
    }


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def stream(client: httpx.AsyncClient, creator: InfluencerAccount) -> dict[str, Any]:
    await login_influencer(client, creator)
    response = await client.post("/api/streams", json={"title": "Counted", "description": ""})
    body: dict[str, Any] = response.json()["stream"]
    return body


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def deliver(client: httpx.AsyncClient, ctx: AppState, events: list[dict[str, Any]]) -> None:
    headers = {WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret}
    for event in events:
        assert (await client.post("/webhooks/100ms", json=event, headers=headers)).is_success
    await ctx.ingestion.worker.drain()


async def test_live_streams_viewers_and_the_webhooks_behind_them(
    client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
) -> None:
    before = await scrape(client)
    assert value(before, "livestage_streams_starting") == 1
    assert value(before, "livestage_streams_live") == 0
    assert value(before, "livestage_viewers_watching") == 0

    script = SessionScript(room_id=stream["room_id"])
    viewer = script.join("p2", "v1", "viewer", clock())
    events = [
        script.open(clock()),
        script.join("p1", "host", "broadcaster", clock()),
        viewer,
        script.join("p3", "v2", "viewer", clock()),
    ]
    await deliver(client, ctx, [*events, viewer])

    after = await scrape(client)
    assert value(after, "livestage_streams_live") == 1
    assert value(after, "livestage_streams_starting") == 0
    assert value(after, "livestage_viewers_watching") == 2

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(RECEIVED, source="hms", outcome="new") == len(events)
    assert grew(RECEIVED, source="hms", outcome="duplicate") == 1
    assert grew(APPLIED, outcome="applied") == len(events)
    assert grew(APPLIED, outcome="failed") == 0
    assert grew(LAG) == len(events)
    # Going live asked 100ms for the room: the call is timed under its path template.
    assert value(after, "livestage_provider_call_seconds_count", call="POST /rooms") >= 1


async def test_an_ended_stream_is_neither_live_nor_watched(
    client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
) -> None:
    script = SessionScript(room_id=stream["room_id"])
    opened = clock()
    await deliver(
        client,
        ctx,
        [
            script.open(opened),
            script.join("p1", "host", "broadcaster", opened),
            script.join("p2", "v1", "viewer", opened),
            script.close(clock.advance(seconds=30)),
        ],
    )
    samples = await scrape(client)
    assert value(samples, "livestage_streams_live") == 0
    assert value(samples, "livestage_streams_starting") == 0
    assert value(samples, "livestage_viewers_watching") == 0


async def test_metrics_is_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths
    assert "/api/admin/streams" in paths
