"""On PostgreSQL the worker applies a backlog in lanes at once, each the events of a share of the
rooms (repository.Lane): every event is in exactly one lane, a room's events all in the same
one, and the figures come out exact. Each event is stored with its room."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.db import transaction
from livestage.models import ProviderEvent, StreamStatus
from livestage.tracking import worker as worker_module
from livestage.tracking.repository import EventRepository, Lane
from livestage.tracking.service import ROOM_ID_MAX
from livestage.tracking.service import tracking as tracking_service
from tests.integration.test_tracking_batch import (
    NOW,
    Database,
    _assert_streams_exact,
    _crowd,
    _store,
    _streams,
    _worker,
    db,
)
from tests.support.hms_events import SessionScript

pytestmark = pytest.mark.asyncio
__all__ = ["db"]  # the fixture, shared with test_tracking_batch
LANES = 4
postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _room(payload: Any) -> str:
    return str(payload["data"]["room_id"])


@postgres_only
async def test_the_lanes_share_the_waiting_events_by_room(db: Database) -> None:
    streams = await _streams(db, 12, StreamStatus.live)
    events = _crowd(streams)
    await _store(db, events)

    lanes_of_room: dict[str, set[int]] = defaultdict(set)
    claimed: list[str] = []
    for number in range(LANES):
        async with db.sessionmaker() as session, session.begin():
            lane = Lane(number, LANES)
            for stored in await EventRepository(session).claim_unprocessed(10_000, lane=lane):
                claimed.append(stored.external_id)
                lanes_of_room[_room(stored.payload)].add(number)
            await session.rollback()

    assert sorted(claimed) == sorted(e["id"] for e in events)
    assert all(len(lanes) == 1 for lanes in lanes_of_room.values())
    assert len(set().union(*lanes_of_room.values())) > 1


@postgres_only
async def test_the_lanes_apply_at_once_and_each_stream_comes_out_exact(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "BATCH_POSTGRESQL", 5)
    monkeypatch.setattr(worker_module, "FIRST_BATCH_POSTGRESQL", 5)
    running, most = 0, 0
    lanes: list[Lane | None] = []
    process_pending = tracking_service.process_pending

    async def counted(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        lanes.append(kwargs.get("lane"))
        running += 1
        most = max(most, running)
        try:
            return await process_pending(session, *args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(tracking_service, "process_pending", counted)
    streams = await _streams(db, 12, StreamStatus.live)
    events = _crowd(streams)
    await _store(db, events)

    assert await _worker(db).drain() == len(events)

    assert lanes[0] is None  # the first batch, in one transaction: then the lanes
    assert most > 1 and set(lanes[1:]) == {Lane(i, LANES) for i in range(LANES)}
    await _assert_streams_exact(db, streams)


@postgres_only
async def test_events_stored_before_rooms_were_kept_are_applied_in_one_lane(
    db: Database,
) -> None:
    streams = await _streams(db, 6, StreamStatus.live)
    events = _crowd(streams)
    await _store(db, events)
    async with transaction(db.sessionmaker) as session:
        await session.execute(update(ProviderEvent).values(room_id=None))

    assert await _worker(db).drain() == len(events)

    await _assert_streams_exact(db, streams)


async def test_each_event_is_stored_with_its_room_unless_no_stream_could_have_it(
    db: Database,
) -> None:
    room, too_long = "r" * ROOM_ID_MAX, "r" * (ROOM_ID_MAX + 1)
    envelopes = [
        SessionScript(room_id=room).join("p1", "u1", "viewer", NOW),
        SessionScript(room_id=too_long).join("p2", "u2", "viewer", NOW),
    ]
    async with transaction(db.sessionmaker) as session:
        stored = await tracking_service.ingest_many(
            session, [("hms", e) for e in envelopes], now=NOW
        )
    assert stored == [True, True]
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(select(ProviderEvent.external_id, ProviderEvent.room_id))
        ).all()
    assert sorted(rows, key=lambda row: row[0]) == sorted(
        [(envelopes[0]["id"], room), (envelopes[1]["id"], None)], key=lambda row: row[0]
    )
