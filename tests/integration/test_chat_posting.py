"""A chat post's transaction on PostgreSQL, run on the driver's connection: whatever ends it, no
transaction (and no identity's lock) is left open on a pooled connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text

from livestage.chat.repository import posting
from livestage.db import Database
from livestage.errors import NotFound
from tests.support.fixtures import make_settings
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]
VIEWER = "viewer-0123456789abcdef"
IDLE_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
)


@pytest_asyncio.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[Database]:
    opened = Database.open(make_settings(postgres_server.url("postgres")))
    yield opened
    await opened.aclose()


async def left_open(database: Database) -> int:
    """Transactions other connections hold open, once closing ones are gone (up to 2 s)."""
    deadline = time.monotonic() + 2
    while True:
        async with database.engine.connect() as connection:
            count = int(await connection.scalar(IDLE_IN_TRANSACTION) or 0)
        if count == 0 or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)


async def backend(database: Database) -> int:
    """The server process behind the pool's connection (the pool holds one here)."""
    async with database.engine.connect() as connection:
        return int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)


async def ending_with(database: Database, error: Exception) -> None:
    async with posting(database) as repository:
        await repository.serialize_identity("alice", VIEWER)
        raise error


async def test_a_refused_post_rolls_back_and_its_connection_is_reused(
    database: Database,
) -> None:
    used = await backend(database)
    with pytest.raises(NotFound):
        await ending_with(database, NotFound("refused between two statements"))
    assert await left_open(database) == 0
    assert await backend(database) == used


async def test_a_post_failing_midway_discards_its_connection(database: Database) -> None:
    used = await backend(database)
    with pytest.raises(RuntimeError):
        await ending_with(database, RuntimeError("failed: the connection's state is not known"))
    assert await left_open(database) == 0
    assert await backend(database) != used


async def test_the_identity_is_free_again_once_a_post_ends(database: Database) -> None:
    for _ in range(2):
        with pytest.raises(NotFound):
            await ending_with(database, NotFound("refused"))
    async with posting(database) as repository:
        await asyncio.wait_for(repository.serialize_identity("alice", VIEWER), 2)
