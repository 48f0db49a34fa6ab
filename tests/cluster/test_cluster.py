"""Several livestage processes on one PostgreSQL and one Redis behave as one (SPEC §7): a
change made through any process reaches open pages on every process, webhooks spread over
the processes converge on the same figures everywhere, and periodic jobs run once per cluster."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from livestage.models import StreamStatus
from tests.cluster.conftest import (
    Cluster,
    Page,
    open_pages,
    post_webhooks,
)
from tests.support.app_process import (
    ServeProcess,
    free_port,
    read_stream,
    seed_influencer,
    seed_stream,
)
from tests.support.hms_events import SessionScript
from tests.support.prometheus import parse, value

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres, pytest.mark.cluster]

VIEWERS = 120
LEAVING = 78  # with the session's opening and the host's join: 200 events


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> None:
    token = (await client.get("/api/auth/csrf")).json()["csrf_token"]
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": password, "role": "influencer"},
        headers={"x-csrf-token": token},
    )
    assert response.status_code == 200, response.text
    client.headers["x-csrf-token"] = response.json()["csrf_token"]


def _audience(room_id: str, t0: datetime) -> list[dict[str, Any]]:
    """A session: the host, then VIEWERS viewers joining a second apart, then LEAVING of them
    leaving: peak VIEWERS, VIEWERS - LEAVING still watching."""
    script = SessionScript(room_id=room_id)
    events = [script.open(t0), script.join("host", "host-user", "broadcaster", t0)]
    for i in range(VIEWERS):
        events.append(script.join(f"v{i}", f"user-{i}", "viewer", t0 + timedelta(seconds=1 + i)))
    for i in range(LEAVING):
        joined = t0 + timedelta(seconds=1 + i)
        left = t0 + timedelta(seconds=VIEWERS + 10 + i)
        events.append(script.leave(f"v{i}", f"user-{i}", "viewer", joined, left))
    return events


async def _seed_live_stream(cluster: Cluster, handle: str, t0: datetime) -> tuple[str, uuid.UUID]:
    influencer = await seed_influencer(cluster.database_url, handle)
    room_id = secrets.token_hex(12)
    stream_id = await seed_stream(
        cluster.database_url,
        influencer.id,
        room_id=room_id,
        created_at=t0 - timedelta(seconds=30),
        status=StreamStatus.live,
    )
    return room_id, stream_id


async def _settled(cluster: Cluster, stream_id: uuid.UUID, timeout: float) -> Any:
    """The stream's record once its figures account for every event."""
    deadline = time.monotonic() + timeout
    while True:
        stored = await read_stream(cluster.database_url, stream_id)
        facts = stored.facts
        if (facts["peak_viewers"], facts["current_viewers"]) == (VIEWERS, VIEWERS - LEAVING):
            return stored
        assert time.monotonic() < deadline, f"figures did not settle: {facts}"
        await asyncio.sleep(0.1)


async def _pages_converge(cluster: Cluster, stream_id: uuid.UUID, pages: list[Page]) -> Any:
    """Once the record accounts for every event, every page shows the record's figures, which
    are the audience's."""
    stored = await _settled(cluster, stream_id, timeout=30)
    expected = {"viewers": stored.facts["current_viewers"], "peak": stored.facts["peak_viewers"]}
    assert expected == {"viewers": VIEWERS - LEAVING, "peak": VIEWERS}
    await asyncio.gather(*(page.shows(5, **expected) for page in pages))
    return stored


class TestLiveUpdates:
    async def test_going_live_on_one_process_shows_on_pages_of_the_others(
        self, cluster: Cluster
    ) -> None:
        first, second, third = cluster.start(3)
        alice = await seed_influencer(cluster.database_url, "alice")
        async with (
            open_pages([second.base_url, third.base_url], "alice") as pages,
            httpx.AsyncClient(base_url=first.base_url, timeout=30) as creator,
        ):
            assert all(page.last["status"] == "offline" for page in pages)
            await _sign_in(creator, alice.email, alice.password)
            started = await creator.post("/api/streams", json={"title": "Cluster"})
            assert started.status_code == 201, started.text
            took = await asyncio.gather(*(p.shows(5, status="starting") for p in pages))
            joined = await creator.post("/api/streams/current/joined")
            assert joined.status_code == 200, joined.text
            live = await asyncio.gather(*(p.shows(5, status="live") for p in pages))
        assert max(took) < 1.0 and max(live) < 1.0, (took, live)

    async def test_webhooks_spread_over_processes_converge_on_every_page(
        self, cluster: Cluster
    ) -> None:
        processes = cluster.start(3)
        t0 = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
        room_id, stream_id = await _seed_live_stream(cluster, "bob", t0)
        urls = [p.base_url for p in processes]
        async with open_pages(urls * 2, "bob") as pages:
            await post_webhooks(urls, cluster.webhook_secret, _audience(room_id, t0))
            stored = await _pages_converge(cluster, stream_id, pages)
        assert stored.facts["unique_viewers"] == VIEWERS


def _reconciler_runs(cluster: Cluster) -> list[int]:
    """Each process's count of its reconciler runs, from its own /metrics (0 once it is gone)."""
    runs = []
    for process in cluster.processes:
        if not process.running:
            runs.append(0)
            continue
        scraped = parse(httpx.get(f"{process.base_url}/metrics").text)
        runs.append(int(value(scraped, "livestage_reconciler_runs_total")))
    return runs


class TestPeriodicJobs:
    async def test_the_reconciler_runs_once_per_interval_across_the_cluster(
        self, cluster: Cluster
    ) -> None:
        cluster.env["LIVESTAGE_RECONCILE_INTERVAL_SECONDS"] = "0.5"
        cluster.start(3)
        runs = await _runs_within(cluster, seconds=5)
        # One run every 0.5 s: about 10 in 5 s, where every process running it would make 30.
        assert 6 <= sum(runs) <= 12, runs
        assert sum(1 for n in runs if n) == 1, runs  # by one leader all along

        leader = cluster.processes[max(range(3), key=runs.__getitem__)]
        leader.kill()
        await asyncio.sleep(2)  # its lease expires within 1 s; another process takes it
        runs = await _runs_within(cluster, seconds=5)
        assert 6 <= sum(runs) <= 12, runs
        assert runs[cluster.processes.index(leader)] == 0


async def _runs_within(cluster: Cluster, *, seconds: float) -> list[int]:
    """How many times each process ran the reconciler in the next `seconds`."""
    before = _reconciler_runs(cluster)
    await asyncio.sleep(seconds)
    return [max(0, a - b) for a, b in zip(_reconciler_runs(cluster), before, strict=True)]


class TestWorkers:
    async def test_serve_with_three_workers_keeps_every_page_current(
        self, cluster: Cluster
    ) -> None:
        t0 = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
        room_id, stream_id = await _seed_live_stream(cluster, "carol", t0)
        served = ServeProcess(cluster.env, workers=3, workdir=cluster.workdir)
        try:
            served.wait_ready()
            async with open_pages([served.base_url] * 8, "carol") as pages:
                events = _audience(room_id, t0)
                await post_webhooks([served.base_url], cluster.webhook_secret, events)
                await _pages_converge(cluster, stream_id, pages)
            # Whichever worker answers the scrape, the figures are the whole server's.
            for _ in range(6):
                scraped = parse(httpx.get(f"{served.base_url}/metrics").text)
                received = value(
                    scraped,
                    "livestage_webhook_events_received_total",
                    source="hms",
                    outcome="new",
                )
                assert received == len(events)
                assert value(scraped, "livestage_streams_live") == 1
        finally:
            served.stop()


class TestReadiness:
    async def test_ready_when_the_database_and_redis_answer(self, cluster: Cluster) -> None:
        (process,) = cluster.start(1)
        ready = httpx.get(f"{process.base_url}/readyz")
        assert ready.status_code == 200
        assert ready.json() | {"provider": "hms"} == {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
            "provider": "hms",
        }

    async def test_not_ready_without_redis(self, cluster: Cluster) -> None:
        cluster.env["LIVESTAGE_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        (process,) = cluster.start(1)
        answer = httpx.get(f"{process.base_url}/readyz")
        assert answer.status_code == 503
        assert answer.json()["redis"] == "unreachable"
        assert answer.json()["database"] == "ok"
