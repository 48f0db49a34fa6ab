"""Real clusters: livestage processes started as a deployer starts them, on one PostgreSQL and
one Redis (both started by the test session on loopback), with the 100ms emulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from livestage.config import Settings
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER, webhook_secret
from tests.support.app_process import AppProcess, app_environment, free_port
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import _psql
from tests.support.postgres import PostgresServer


@pytest.fixture
def cluster_database(postgres_server: PostgresServer, postgres_template: str) -> str:
    name = f"cluster_{uuid.uuid4().hex[:12]}"
    _psql(postgres_server, f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    return postgres_server.url(name)


@dataclass
class Cluster:
    database_url: str
    env: dict[str, str]
    workdir: Path
    processes: list[AppProcess] = field(default_factory=list)

    @property
    def webhook_secret(self) -> str:
        key = self.env["LIVESTAGE_SECRET_KEY"]
        return webhook_secret(Settings(_env_file=None, secret_key=key))  # type: ignore[call-arg]

    def start(self, count: int) -> list[AppProcess]:
        started = [
            AppProcess(self.env, port=free_port(), workdir=self.workdir) for _ in range(count)
        ]
        for process in started:
            self.processes.append(process)
            process.start()
        return started


@pytest.fixture
def cluster(
    tmp_path: Path, cluster_database: str, redis_url: str, emulator: EmulatorHandle
) -> Iterator[Cluster]:
    env = app_environment(
        env="test",
        database_url=cluster_database,
        redis_url=redis_url,
        secret_key=secrets.token_urlsafe(32),
        provider="hms",
        hms_access_key=emulator.access_key,
        hms_app_secret=emulator.app_secret,
        hms_api_url=emulator.api_url,
        hms_auth_url=emulator.auth_url,
        cookie_secure="false",
        worker_poll_seconds=0.2,
        reconcile_interval_seconds=0,
        leader_ttl_seconds=1,
        log_level="INFO",
        log_json="true",
    )
    made = Cluster(cluster_database, env, tmp_path)
    yield made
    for process in made.processes:
        process.kill()


def local_cluster(tmp_path: Path, database_url: str, redis_url: str, **settings: object) -> Cluster:
    """Processes on the local provider (no 100ms), as the browser suites run them."""
    env = app_environment(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secrets.token_urlsafe(32),
        provider="local",
        cookie_secure="false",
        worker_poll_seconds=0.2,
        log_level="INFO",
        log_json="true",
        **settings,
    )
    return Cluster(database_url, env, tmp_path)


@contextlib.asynccontextmanager
async def running(cluster: Cluster, count: int) -> AsyncIterator[Cluster]:
    """`count` processes started (each waits for /healthz), killed at the end."""
    await asyncio.to_thread(cluster.start, count)
    try:
        yield cluster
    finally:
        for process in cluster.processes:
            process.kill()


class Page:
    """An open live page: `GET /api/live/{handle}/events`, keeping every state it was sent."""

    def __init__(self, base_url: str, handle: str) -> None:
        self.base_url, self.handle = base_url, handle
        self.states: list[dict[str, Any]] = []
        self.opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def last(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    async def open(self) -> Page:
        self._task = asyncio.create_task(self._read())
        async with asyncio.timeout(10):
            await self.opened.wait()
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(base_url=self.base_url, timeout=None) as client,
            client.stream("GET", f"/api/live/{self.handle}/events") as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    self.states.append(json.loads(line.removeprefix("data: ")))
                    self.opened.set()

    async def shows(self, timeout: float, **expected: Any) -> float:
        """Seconds until the page's latest state has every `expected` field."""
        started = time.monotonic()
        async with asyncio.timeout(timeout):
            while any(self.last.get(k) != v for k, v in expected.items()):
                await asyncio.sleep(0.01)
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def open_pages(urls: list[str], handle: str) -> AsyncIterator[list[Page]]:
    pages = [Page(url, handle) for url in urls]
    try:
        await asyncio.gather(*(page.open() for page in pages))
        yield pages
    finally:
        await asyncio.gather(*(page.close() for page in pages))


async def post_webhooks(
    urls: list[str], secret: str, events: list[dict[str, Any]], *, concurrency: int = 12
) -> None:
    """Each event to the next process in turn, `concurrency` at a time; every one acknowledged."""
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
    gate = asyncio.Semaphore(concurrency)

    async def send(i: int, event: dict[str, Any]) -> None:
        async with gate:
            response = await clients[i % len(clients)].post(
                "/webhooks/100ms", json=event, headers={WEBHOOK_SECRET_HEADER: secret}
            )
            assert response.status_code == 200, response.text

    try:
        await asyncio.gather(*(send(i, e) for i, e in enumerate(events)))
    finally:
        for client in clients:
            await client.aclose()
