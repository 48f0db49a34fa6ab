"""On PostgreSQL, what applying a batch of events reads does not grow with the history: each
statement that joins the batch's keys to a table looks them up in an index. Left to its
estimates, PostgreSQL hashed the batch and scanned the whole table (every event ever stored
at each batch's mark, every peer at each recompute). Checked on the plans, with a history
many times the batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from bench.seed import seed_live_streams
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from livestage.config import Settings
from livestage.db import create_engine
from livestage.tracking import repository

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]
HISTORY = 200_000
BATCH = 3_000
# The history spread over these (less one, the batch's), as a server's is over its streams.
STREAMS = 40
SCANNED = {"provider_events", "stream_peers", "viewer_samples"}


@pytest.fixture
def seeded(database_url: str) -> str:
    """The database with STREAMS live streams (SQLite's statements walk the batch first by
    construction: PostgreSQL only)."""
    seed_live_streams(database_url, STREAMS, prefix="plans")
    return database_url


@pytest_asyncio.fixture
async def engine(seeded: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(Settings(_env_file=None, database_url=seeded))  # type: ignore[call-arg]
    try:
        yield made
    finally:
        await made.dispose()


async def _history(engine: AsyncEngine, old: list[uuid.UUID], new: uuid.UUID) -> None:
    """HISTORY applied events, and peers and minutes of older streams; BATCH waiting events
    and stored peers of a new one; the tables analyzed, as autovacuum would."""
    async with engine.begin() as connection:
        for sql in (
            "INSERT INTO provider_events (id, source, external_id, type, payload, received_at,"
            " processed_at, attempts) SELECT gen_random_uuid(), 'hms', 'old-' || i, 'x',"
            " '{}', now(), now(), 0 FROM generate_series(1, :history) AS i",
            "INSERT INTO provider_events (id, source, external_id, type, payload, received_at,"
            " attempts) SELECT gen_random_uuid(), 'hms', 'new-' || i, 'x', '{}', now(), 0"
            " FROM generate_series(1, :batch) AS i",
            "INSERT INTO stream_peers (id, stream_id, peer_id, user_id, name, role,"
            " is_broadcaster, joined_at, left_at, left_inferred) SELECT gen_random_uuid(),"
            " (CAST(:old AS uuid[]))[1 + i % :streams], 'old-' || i, 'u' || i, '', 'viewer',"
            " false, now() - interval '1 day',"
            " now() - interval '23 hours', false FROM generate_series(1, :history) AS i",
            "INSERT INTO stream_peers (id, stream_id, peer_id, user_id, name, role,"
            " is_broadcaster, joined_at, left_inferred) SELECT gen_random_uuid(), :new,"
            " 'new-' || i, 'u' || i, '', 'viewer', false, now(), false"
            " FROM generate_series(1, :batch) AS i",
            "INSERT INTO viewer_samples (stream_id, minute, viewers) SELECT"
            " (CAST(:old AS uuid[]))[1 + i % :streams],"
            " date_trunc('minute', now()) - i * interval '1 minute', 1"
            " FROM generate_series(1, :history) AS i",
            "INSERT INTO checkpoint_peers (stream_id, peer_id) SELECT stream_id, id"
            " FROM stream_peers WHERE stream_id = (CAST(:old AS uuid[]))[1] LIMIT 50",
        ):
            parameters = {"history": HISTORY, "batch": BATCH, "old": old, "new": new}
            parameters["streams"] = len(old)
            await connection.execute(text(sql), parameters)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))


def _scans(plan: Any) -> set[str]:
    """The tables a plan reads from start to end."""
    nodes, scanned = [plan], set()
    while nodes:
        node = nodes.pop()
        if node.get("Node Type") == "Seq Scan":
            scanned.add(node["Relation Name"])
        nodes.extend(node.get("Plans", []))
    return scanned


async def test_a_batch_looks_its_keys_up_whatever_the_history(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        streams = await connection.execute(text("SELECT id FROM live_streams ORDER BY id"))
        *old, new = streams.scalars().all()
    await _history(engine, old, new)
    async with engine.connect() as connection:
        events = (
            (
                await connection.execute(
                    text("SELECT id FROM provider_events WHERE processed_at IS NULL")
                )
            )
            .scalars()
            .all()
        )
        peers = (
            await connection.execute(
                text("SELECT id, peer_id FROM stream_peers WHERE stream_id = :new"), {"new": new}
            )
        ).all()
        left = datetime.now(UTC) + timedelta(minutes=1)
        statements: dict[str, tuple[Any, dict[str, Any]]] = {
            "mark applied": (
                repository._MARK_APPLIED_PG,
                {"at": left, "ids": list(events), "streams": [new] * len(events)},
            ),
            "samples replaced": (
                repository._DELETE_SAMPLES_PG,
                {"stream_id": [new, old[0]], "since": [repository.EVERY_PEER, left]},
            ),
            "peers by key": (
                repository._PEERS_BY_KEY_PG,
                {"streams": [new] * len(peers), "peers": [key for _, key in peers]},
            ),
        }
        plans = {}
        for name, (statement, parameters) in statements.items():
            sql = getattr(statement, "element", statement).text
            explained = await connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), parameters)
            plans[name] = _plan(explained.scalar_one())
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        spans = await driver.fetchval(
            f"EXPLAIN (FORMAT JSON) {repository._PEER_SPANS_PG}",
            [new, old[0]],
            [repository.EVERY_PEER, left],
            [old[0]],
        )
        plans["peer spans"] = _plan(spans)
    assert len(events) == len(peers) == BATCH
    assert {name: _scans(plan) & SCANNED for name, plan in plans.items()} == {
        name: set() for name in plans
    }


def _plan(explained: Any) -> Any:
    return (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
