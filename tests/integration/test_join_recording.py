"""Join intents as the recorder writes them (packed a row per stream, streams/intents.py), on
both databases: every intent read back as given, through the model's own column types, each
stream's in the order they were requested, and counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.models import ViewerJoinBatch
from livestage.streams import joins as joins_module
from livestage.streams.intents import JoinIntent
from livestage.streams.joins import JoinRecorder
from livestage.streams.repository import ViewerJoinRepository

pytestmark = pytest.mark.asyncio
AT = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)


async def test_every_intent_is_stored_as_given_each_streams_in_request_order(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(joins_module, "PACKED_PER_TURN", 2)  # the loop served in between
    streams = [uuid.uuid4() for _ in range(3)]
    names = ["viewer-1", 'quote " and \\ backslash', "ünïcødé 観客", "x" * 60, "", "emoji 🎥"]
    intents = [
        JoinIntent(
            streams[i % 3],
            f"{names[i % len(names)]}-{i}",
            AT + timedelta(microseconds=i * 1_000_001),
        )
        for i in range(11)
    ]
    recorder = JoinRecorder(sessionmaker)
    for intent in intents[:5]:
        recorder.record(intent)
    assert await recorder.flush() == 5
    for intent in intents[5:]:
        recorder.record(intent)
    assert await recorder.flush() == 6

    async with sessionmaker() as session:
        repository = ViewerJoinRepository(session)
        for stream in streams:
            assert await repository.intents_of(stream) == [
                i for i in intents if i.stream_id == stream
            ]
            assert await repository.count(stream) in (3, 4)
        rows = await session.scalar(select(func.count()).select_from(ViewerJoinBatch))
    assert rows == 6  # a row per stream per write


async def test_a_stream_without_joins_counts_none(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        repository = ViewerJoinRepository(session)
        assert await repository.count(uuid.uuid4()) == 0
        assert await repository.intents_of(uuid.uuid4()) == []
