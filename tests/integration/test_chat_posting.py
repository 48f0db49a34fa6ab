"""A chat post on PostgreSQL, run on the driver's connection in one round trip: whatever ends it,
no transaction (and no identity's lock) is left open on a pooled connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text

from livestage.chat.repository import Draft, PostingState, _lock_key, posting
from livestage.db import Database
from livestage.errors import NotFound
from livestage.kit.time import utc_now
from livestage.models import ChatRole
from tests.support.fixtures import make_settings

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]
VIEWER = "viewer-0123456789abcdef"
IDLE_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
)
ADVISORY_LOCKS = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


@pytest_asyncio.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    opened = Database.open(make_settings(database_url))
    yield opened
    await opened.aclose()


def draft(handle: str = "alice") -> Draft:
    return Draft(uuid.uuid4(), handle, VIEWER, None, False, "Bea", "hello", utc_now())


def never(_state: PostingState, _role: ChatRole) -> None:
    raise AssertionError("no posting state to check")


async def left_open(database: Database) -> tuple[int, int]:
    """Transactions and advisory locks other connections hold, once closing ones are gone
    (up to 2 s)."""
    deadline = time.monotonic() + 2
    while True:
        async with database.engine.connect() as connection:
            found = (
                int(await connection.scalar(IDLE_IN_TRANSACTION) or 0),
                int(await connection.scalar(ADVISORY_LOCKS) or 0),
            )
        if found == (0, 0) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def backend(database: Database) -> int:
    """The server process behind the pool's connection (the pool holds one here)."""
    async with database.engine.connect() as connection:
        return int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)


async def ending_with(database: Database, error: Exception) -> None:
    async with posting(database) as repository:
        assert await repository.add_if_allowed(draft(), never) is None  # no such handle
        raise error


async def test_a_refused_post_leaves_nothing_open_and_its_connection_is_reused(
    database: Database,
) -> None:
    used = await backend(database)
    with pytest.raises(NotFound):
        await ending_with(database, NotFound("refused once the round trip was over"))
    assert await left_open(database) == (0, 0)
    assert await backend(database) == used


async def test_a_post_failing_midway_discards_its_connection(database: Database) -> None:
    used = await backend(database)
    with pytest.raises(RuntimeError):
        await ending_with(database, RuntimeError("failed: the connection's state is not known"))
    assert await left_open(database) == (0, 0)
    assert await backend(database) != used


async def test_a_post_waits_for_its_identity_and_a_cancelled_one_leaves_nothing_held(
    database: Database,
) -> None:
    """The round trip takes the identity's lock before it reads: held elsewhere, the post
    waits; cancelled while it waits, its connection goes and nothing stays locked."""
    key = _lock_key(f"chat:alice:{VIEWER}")
    async with database.engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        with pytest.raises(TimeoutError):
            async with posting(database) as repository:
                await asyncio.wait_for(repository.add_if_allowed(draft(), never), 0.5)
        await other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    assert await left_open(database) == (0, 0)
    async with posting(database) as repository:
        assert await asyncio.wait_for(repository.add_if_allowed(draft(), never), 2) is None
