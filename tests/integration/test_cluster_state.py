"""Live state shared through a real Redis: the bus between processes, the live broker on it,
and the lease that picks the one process running periodic jobs. Each "process" here is its own
client and its own broker, as in separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from livestage.kit.bus import RedisBus, redis_client
from livestage.kit.leader import RedisLeadership
from livestage.streams.broker import LiveBroker

CHANNEL = "test:live"


@pytest_asyncio.fixture
async def clients(redis_url: str) -> AsyncIterator[list[Redis]]:
    made = [redis_client(redis_url) for _ in range(3)]
    yield made
    for client in made:
        await client.aclose()


async def _next_frame(queue: asyncio.Queue[bytes]) -> bytes:
    async with asyncio.timeout(2):
        while True:
            frame = await queue.get()
            if not frame.startswith(b":"):
                return frame


class TestBus:
    pytestmark = pytest.mark.asyncio

    async def test_messages_reach_the_other_processes_in_order_and_not_their_sender(
        self, clients: list[Redis]
    ) -> None:
        sender, receiver = RedisBus(clients[0], CHANNEL), RedisBus(clients[1], CHANNEL)
        sent_back: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        sender.start(sent_back.append)
        receiver.start(received.append)
        try:
            await asyncio.wait_for(
                asyncio.gather(sender.subscribed(), receiver.subscribed()), timeout=5
            )
            for n in range(200):
                sender.send({"n": n})
            async with asyncio.timeout(5):
                while len(received) < 200:
                    await asyncio.sleep(0.01)
        finally:
            await sender.stop()
            await receiver.stop()
        assert [m["n"] for m in received] == list(range(200))
        assert sent_back == []

    async def test_what_is_published_at_once_goes_in_one_pipeline_in_order(
        self, clients: list[Redis], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sender, receiver = RedisBus(clients[0], CHANNEL), RedisBus(clients[1], CHANNEL)
        pipelines: list[object] = []
        pipeline = clients[0].pipeline

        def counted(**options: Any) -> Any:
            pipelines.append(options)
            return pipeline(**options)

        monkeypatch.setattr(clients[0], "pipeline", counted)
        received: list[dict[str, Any]] = []
        sender.start(lambda _message: None)
        receiver.start(received.append)
        try:
            await asyncio.wait_for(
                asyncio.gather(sender.subscribed(), receiver.subscribed()), timeout=5
            )
            await asyncio.gather(*(sender.publish_now({"n": n}) for n in range(20)))
            await sender.publish_now({"n": 20})
            async with asyncio.timeout(5):
                while len(received) < 21:
                    await asyncio.sleep(0.01)
        finally:
            await sender.stop()
            await receiver.stop()
        assert [m["n"] for m in received] == list(range(21))
        assert len(pipelines) == 2


@contextlib.asynccontextmanager
async def _broker(client: Redis, refresh: Any = None) -> AsyncIterator[LiveBroker]:
    broker = LiveBroker(bus=RedisBus(client, CHANNEL), refresh=refresh)
    broker.start(heartbeat_seconds=60)
    assert broker.bus is not None
    await asyncio.wait_for(broker.bus.subscribed(), timeout=5)
    try:
        yield broker
    finally:
        await broker.stop()


class TestLiveBroker:
    pytestmark = pytest.mark.asyncio

    async def test_an_update_reaches_pages_on_every_process(self, clients: list[Redis]) -> None:
        changed: list[str] = []
        async with (
            _broker(clients[0]) as first,
            _broker(clients[1]) as second,
            _broker(clients[2]) as third,
        ):
            second.on_publish(changed.append)
            async with second.subscribe("alice") as on_second, third.subscribe("alice") as on_third:
                first.publish("alice", {"handle": "alice", "status": "live", "viewers": 3})
                frames = [await _next_frame(on_second), await _next_frame(on_third)]
        for frame in frames:
            assert b'"status": "live"' in frame and b'"viewers": 3' in frame
        assert changed == ["alice"]  # caches of the stream's state drop it there too

    async def test_after_an_update_from_elsewhere_pages_get_what_the_database_says(
        self, clients: list[Redis]
    ) -> None:
        """Updates from two processes can cross on the way; the database decides."""
        reads: list[str] = []

        async def database_says(handle: str) -> dict[str, Any]:
            reads.append(handle)
            return {"handle": handle, "viewers": 5}

        async with _broker(clients[0]) as first, _broker(clients[1], database_says) as second:
            async with second.subscribe("alice") as pages:
                first.publish("alice", {"handle": "alice", "viewers": 4})
                crossed = await _next_frame(pages)
                settled = await _next_frame(pages)
        assert b'"viewers": 4' in crossed
        assert b'"viewers": 5' in settled
        assert reads == ["alice"]


class TestLeadership:
    pytestmark = pytest.mark.asyncio

    async def test_one_process_leads_and_another_takes_over_when_it_goes(
        self, clients: list[Redis]
    ) -> None:
        leases = [RedisLeadership(c, key="test:leader", ttl=1.0) for c in clients]
        for lease in leases:
            lease.start()
        try:
            async with asyncio.timeout(3):
                while sum(lease.held for lease in leases) != 1:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # renewals keep it with the same process
            assert sum(lease.held for lease in leases) == 1
            leader = next(lease for lease in leases if lease.held)
            await leader.stop()
            others = [lease for lease in leases if lease is not leader]
            async with asyncio.timeout(3):
                while sum(lease.held for lease in others) != 1:
                    await asyncio.sleep(0.05)
        finally:
            for lease in leases:
                await lease.stop()

    async def test_a_dead_leaders_lease_expires(self, clients: list[Redis]) -> None:
        dead = RedisLeadership(clients[0], key="test:leader", ttl=1.0)
        assert await dead.claim()  # then never renewed: the process died
        successor = RedisLeadership(clients[1], key="test:leader", ttl=1.0)
        assert not await successor.claim()
        await asyncio.sleep(1.2)
        assert await successor.claim()
        assert not await dead.claim()


@pytest.mark.parametrize(
    ("settings", "processes", "says"),
    [
        ({}, 2, "set LIVESTAGE_REDIS_URL"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, 1, "need PostgreSQL"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, 3, "need PostgreSQL"),
    ],
)
def test_what_cannot_run_as_a_cluster_is_named(
    settings: dict[str, str], processes: int, says: str
) -> None:
    from livestage.config import Settings

    problem = Settings(_env_file=None, **settings).cluster_problem(processes=processes)  # type: ignore[call-arg]
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    ("environment", "workers", "says"),
    [
        ({}, "2", "set LIVESTAGE_REDIS_URL"),
        ({"LIVESTAGE_REDIS_URL": "redis://127.0.0.1:6379/0"}, "2", "need PostgreSQL"),
        ({"LIVESTAGE_REDIS_URL": "redis://127.0.0.1:6379/0"}, "1", "need PostgreSQL"),
    ],
)
def test_serve_refuses_to_start_what_cannot_work(
    environment: dict[str, str], workers: str, says: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESTAGE_")}
    env["LIVESTAGE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    livestage = Path(sys.executable).with_name("livestage")
    result = subprocess.run(
        [str(livestage), "serve", "--port", "1", "--workers", workers],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert says in result.stderr
