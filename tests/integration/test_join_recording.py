"""Join intents as the recorder writes them (SQLite: slices in stream order; PostgreSQL: a
binary COPY): every row stored as given, read back through the model's own column types, each
stream's joins in the order they were requested."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.db import transaction
from livestage.models import ViewerJoin
from livestage.streams import repository as repository_module
from livestage.streams.repository import ViewerJoinRepository

pytestmark = pytest.mark.asyncio
AT = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)


async def test_every_intent_is_stored_as_given_each_streams_in_request_order(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository_module, "_SQLITE_SLICE", 4)  # several slices
    streams = [uuid.uuid4() for _ in range(3)]
    names = ["viewer-1", 'quote " and \\ backslash', "ünïcødé 観客", "x" * 60, "", "emoji 🎥"]
    rows = [
        (streams[i % 3], f"{names[i % len(names)]}-{i}", AT + timedelta(microseconds=i * 1_000_001))
        for i in range(11)
    ]
    async with transaction(sessionmaker) as session:
        await ViewerJoinRepository(session).add_many(rows)

    async with sessionmaker() as session:
        stored = (await session.scalars(select(ViewerJoin).order_by(ViewerJoin.id))).all()
    got = [(j.stream_id, j.viewer_id, j.requested_at) for j in stored]
    assert sorted(got, key=lambda r: (r[0].int, r[2])) == sorted(
        rows, key=lambda r: (r[0].int, r[2])
    )
    for stream in streams:
        times = [at for s, _, at in got if s == stream]
        assert times == sorted(times)  # ids in request order within a stream
    for stream in streams:
        async with sessionmaker() as session:
            assert await ViewerJoinRepository(session).count(stream) in (3, 4)
