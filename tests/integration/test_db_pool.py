"""PostgreSQL's connection pool: a connection left idle is checked before use (the server may
have dropped it), one in steady use is not (the check is three round trips)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from livestage import db
from livestage.db import create_engine, create_sessionmaker, transaction
from tests.support.fixtures import make_settings
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]
IDLE = 0.2


@pytest_asyncio.fixture
async def engine(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncEngine]:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", IDLE)
    made = create_engine(make_settings(postgres_server.url("postgres")))
    yield made
    await made.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    made: list[float] = []
    ping = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        made.append(time.monotonic())
        ping(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return made


async def backend_pid(engine: AsyncEngine) -> int:
    async with transaction(create_sessionmaker(engine)) as session:
        pid: int = await session.scalar(text("SELECT pg_backend_pid()"))
        return pid


async def test_a_connection_in_steady_use_is_not_pinged(
    engine: AsyncEngine, pings: list[float]
) -> None:
    first = await backend_pid(engine)
    for _ in range(5):
        assert await backend_pid(engine) == first  # the pool's one connection, reused
    assert pings == []


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    engine: AsyncEngine, pings: list[float], postgres_server: PostgresServer
) -> None:
    dropped = await backend_pid(engine)
    other = create_engine(make_settings(postgres_server.url("postgres")))
    try:
        async with other.connect() as connection:
            killed = text("SELECT pg_terminate_backend(:pid)")
            assert await connection.scalar(killed, {"pid": dropped})
    finally:
        await other.dispose()
    await asyncio.sleep(IDLE * 1.5)
    replaced = await backend_pid(engine)  # no error: the ping found it gone
    assert replaced != dropped
    assert len(pings) == 1
