"""One batch of stored events over many streams: each stream's exact figures and lifecycle, from
a number of SQL statements that does not grow with the batch (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.models import (
    Influencer,
    LiveStream,
    ProviderEvent,
    StreamPeer,
    StreamStatus,
    StreamStrategy,
    User,
    UserRole,
)
from livestage.streams.broker import LiveBroker
from livestage.tracking import service as service_module
from livestage.tracking import worker as worker_module
from livestage.tracking.events import Kind
from livestage.tracking.figures import Interval, viewer_stats
from livestage.tracking.repository import TrackingRepository
from livestage.tracking.service import TrackingConfig
from livestage.tracking.service import tracking as tracking_service
from livestage.tracking.worker import TrackingWorker
from tests.support.hms_events import SessionScript

pytestmark = pytest.mark.asyncio
CONFIG = TrackingConfig("broadcaster", timedelta(seconds=60))
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    engine = create_engine(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    try:
        yield Database(engine, create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _streams(db: Database, count: int, status: StreamStatus) -> list[LiveStream]:
    streams = []
    async with transaction(db.sessionmaker) as session:
        for i in range(count):
            handle = f"batch{i}"
            user = User(
                email=f"{handle}@example.com",
                display_name=handle,
                password_hash="unused",
                role=UserRole.influencer,
            )
            room = secrets.token_hex(12)
            stream = LiveStream(
                influencer=Influencer(user=user, handle=handle, hms_room_id=room),
                provider="hms",
                strategy=StreamStrategy.automatic,
                status=status,
                title="batch",
                room_id=room,
                started_at=T0 if status == StreamStatus.live else None,
                created_at=T0 - timedelta(minutes=1),
            )
            session.add(stream)
            streams.append(stream)
    return streams


async def _store(db: Database, events: list[dict[str, Any]]) -> None:
    """Stored one after another (each event's storage time is its place in the order)."""
    async with transaction(db.sessionmaker) as session:
        for i, envelope in enumerate(events):
            at = NOW - timedelta(seconds=1) + timedelta(microseconds=i)
            await tracking_service.ingest(session, "hms", envelope, now=at)


async def _apply_in_one_batch(db: Database, expected_events: int) -> int:
    """Apply every stored event in one batch and recompute; the SQL statements it sent."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with transaction(db.sessionmaker) as session:
            result = await tracking_service.process_pending(
                session, CONFIG, now=NOW, limit=10_000, recompute=True
            )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert (result.processed, result.failed) == (expected_events, 0)
    return len(statements)


def _viewers(stream_index: int) -> list[tuple[str, datetime, datetime | None]]:
    """(user, joined, left) of each viewer of the stream: the first half leave, the rest stay."""
    count = 2 + stream_index % 5
    visits = []
    for j in range(count):
        joined = T0 + timedelta(seconds=10 * j)
        left = T0 + timedelta(seconds=100 + j) if j < count // 2 else None
        visits.append((f"s{stream_index}-v{j}", joined, left))
    return visits


def _crowd(streams: list[LiveStream]) -> list[dict[str, Any]]:
    events = []
    for i, stream in enumerate(streams):
        assert stream.room_id is not None
        script = SessionScript(room_id=stream.room_id)
        events.append(script.join(f"host-{i}", f"host-{i}", "broadcaster", T0))
        for user, joined, left in _viewers(i):
            events.append(script.join(f"peer-{user}", user, "viewer", joined))
            if left is not None:
                events.append(script.leave(f"peer-{user}", user, "viewer", joined, left))
    return events


def _assert_exact_figures(
    stream: LiveStream, index: int
) -> list[tuple[str, datetime, datetime | None]]:
    """The `index`-th crowd stream's figures, as its viewers' visits make them; the visits."""
    visits = _viewers(index)
    stayed = [joined for _, joined, left in visits if left is None]
    watched = sum(((left or NOW) - joined).total_seconds() for _, joined, left in visits)
    assert stream.current_viewers == len(stayed)
    assert stream.peak_viewers == stream.unique_viewers == len(visits)
    assert stream.total_watch_seconds == pytest.approx(watched)
    return visits


async def _assert_streams_exact(db: Database, streams: list[LiveStream]) -> None:
    """Each of `_crowd`'s streams, as stored, with its exact figures, none owed."""
    async with db.sessionmaker() as session:
        for i, seeded in enumerate(streams):
            stream = await session.get(LiveStream, seeded.id)
            assert stream is not None and stream.figures_stale is False
            _assert_exact_figures(stream, i)


async def test_one_batch_over_many_streams_gives_each_stream_its_exact_figures(
    db: Database,
) -> None:
    streams = await _streams(db, 30, StreamStatus.live)
    events = _crowd(streams)
    random.Random(7).shuffle(events)  # a leave before its join, across streams
    await _store(db, events)
    await _apply_in_one_batch(db, len(events))

    async with db.sessionmaker() as session:
        for i, seeded in enumerate(streams):
            stream = await session.get(LiveStream, seeded.id)
            assert stream is not None
            visits = _assert_exact_figures(stream, i)
            assert stream.status == StreamStatus.live
            assert stream.figures_stale is False
            assert stream.broadcaster_left_at is None
            peers = await session.scalar(
                select(func.count()).where(StreamPeer.stream_id == stream.id)
            )
            assert peers == len(visits) + 1
        pending = await session.scalar(
            select(func.count()).where(ProviderEvent.processed_at.is_(None))
        )
        applied = set(await session.scalars(select(ProviderEvent.stream_id)))
    assert pending == 0
    assert applied == {s.id for s in streams}


def _worker_in_batches_of_seven(db: Database, monkeypatch: pytest.MonkeyPatch) -> TrackingWorker:
    monkeypatch.setattr(worker_module, "SQLITE_LARGEST_BATCH", 7)
    monkeypatch.setattr(worker_module, "BATCH_POSTGRESQL", 7)
    monkeypatch.setattr(worker_module, "FIRST_BATCH_POSTGRESQL", 7)
    return _worker(db)


def _worker(db: Database) -> TrackingWorker:
    return TrackingWorker(
        db.sessionmaker,
        CONFIG,
        clock=lambda: NOW,
        broker=LiveBroker(),
        provider=None,
        poll_seconds=3600,
        reconcile_seconds=0,
    )


async def test_a_drain_of_many_batches_applies_each_event_once_with_exact_figures(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches, a viewer's join and leave often in different ones (shuffled): each batch
    must read the peers and streams the one before left."""
    streams = await _streams(db, 12, StreamStatus.live)
    events = _crowd(streams)
    random.Random(11).shuffle(events)
    await _store(db, events)
    worker = _worker_in_batches_of_seven(db, monkeypatch)

    assert await worker.drain() == len(events)

    async with db.sessionmaker() as session:
        for i, seeded in enumerate(streams):
            stream = await session.get(LiveStream, seeded.id)
            assert stream is not None
            visits = _assert_exact_figures(stream, i)
            assert stream.figures_stale is False
            peers = await TrackingRepository(session).peers(stream.id)
            assert len(peers) == len(visits) + 1
            left = {p.peer_id: p.left_at for p in peers}
            assert all(left[f"peer-{user}"] == went for user, _, went in visits)
        pending = await session.scalar(
            select(func.count()).where(ProviderEvent.processed_at.is_(None))
        )
        assert pending == 0


async def test_sqlite_batches_grow_to_hold_the_writer_as_long_as_allowed_postgresql_is_fixed(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the first batch is SQLITE_FIRST_BATCH, the next sized from its cost (far under
    the hold here, however loaded the machine), up to SQLITE_LARGEST_BATCH. PostgreSQL: the
    first is FIRST_BATCH_POSTGRESQL, every later one BATCH_POSTGRESQL."""
    monkeypatch.setattr(worker_module, "SQLITE_HOLD_SECONDS", 30.0)
    monkeypatch.setattr(worker_module, "SQLITE_FIRST_BATCH", 5)
    monkeypatch.setattr(worker_module, "SQLITE_SMALLEST_BATCH", 5)
    monkeypatch.setattr(worker_module, "SQLITE_LARGEST_BATCH", 12)
    monkeypatch.setattr(worker_module, "BATCH_POSTGRESQL", 9)
    monkeypatch.setattr(worker_module, "FIRST_BATCH_POSTGRESQL", 3)
    limits: list[int] = []
    process_pending = tracking_service.process_pending

    async def recording(session: AsyncSession, *args: Any, limit: int, **kwargs: Any) -> Any:
        limits.append(limit)
        return await process_pending(session, *args, limit=limit, **kwargs)

    monkeypatch.setattr(tracking_service, "process_pending", recording)
    streams = await _streams(db, 4, StreamStatus.live)
    events = _crowd(streams)
    await _store(db, events)

    assert await _worker(db).drain() == len(events)

    if db.engine.dialect.name == "sqlite":
        assert limits[0] == 5 and len(limits) > 2
        assert all(5 < limit <= 12 for limit in limits[1:]), limits
    else:
        assert limits[0] == 3 and set(limits[1:]) == {9} and len(limits) > 2
    await _assert_streams_exact(db, streams)


async def test_a_drain_of_many_batches_retries_an_event_that_failed_in_an_early_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event that failed in its batch is claimed again before the drain ends (in one lane:
    with several, the lane of its room may have no batch after its first)."""
    monkeypatch.setattr(worker_module, "LANES_POSTGRESQL", 1)
    join = service_module.HANDLERS[Kind.peer_join]

    async def refuse(*args: Any) -> None:
        if args[2].text("user_id") == "s0-v0":
            raise RuntimeError("cannot apply this one")
        await join(*args)

    monkeypatch.setitem(service_module.HANDLERS, Kind.peer_join, refuse)
    streams = await _streams(db, 6, StreamStatus.live)
    events = _crowd(streams)
    await _store(db, events)
    worker = _worker_in_batches_of_seven(db, monkeypatch)

    assert await worker.drain() == len(events) - 1

    async with db.sessionmaker() as session:
        stored = list(await session.scalars(select(ProviderEvent)))
    (failed,) = [e for e in stored if e.error]
    assert failed.payload["data"]["user_id"] == "s0-v0"
    assert failed.attempts >= 2  # failed in its batch, and again at the drain's end
    assert all(e.processed_at is not None for e in stored if e is not failed)


async def test_the_statements_of_a_batch_do_not_grow_with_its_events(db: Database) -> None:
    streams = await _streams(db, 30, StreamStatus.live)
    small = [_crowd(streams)[0]]
    await _store(db, small)
    few = await _apply_in_one_batch(db, 1)

    events = _crowd(streams)[1:]
    await _store(db, events)
    many = await _apply_in_one_batch(db, len(events))
    # Applying one event at a time took 6.5 statements per event: thousands here.
    assert len(events) > 100
    assert many <= few + 4, (few, many)
    assert many <= 20


async def test_a_batch_applies_each_streams_lifecycle_in_event_order(db: Database) -> None:
    """In one batch: a viewer alone does not open a starting stream; the broadcaster's join
    makes it live and its session the stream's; the close ends it and closes the peers that
    joined earlier in the batch; a join after the end is closed at the end."""
    (stream,) = await _streams(db, 1, StreamStatus.starting)
    assert stream.room_id is not None
    script = SessionScript(room_id=stream.room_id)
    end = T0 + timedelta(minutes=3)
    events = [
        script.open(T0),
        script.join("early", "early", "viewer", T0),
        script.join("host", "host", "broadcaster", T0 + timedelta(seconds=5)),
        script.join("v1", "v1", "viewer", T0 + timedelta(seconds=20)),
        script.leave("early", "early", "viewer", T0, T0 + timedelta(seconds=50)),
        script.close(end),
        script.join("late", "late", "viewer", end - timedelta(seconds=10)),
    ]
    await _store(db, events)
    await _apply_in_one_batch(db, len(events))

    async with db.sessionmaker() as session:
        found = await session.get(LiveStream, stream.id)
        peers = {
            p.peer_id: p
            for p in await session.scalars(
                select(StreamPeer).where(StreamPeer.stream_id == stream.id)
            )
        }
    assert found is not None
    assert (found.status, found.end_reason) == (StreamStatus.ended, "session_closed")
    assert found.session_id == script.session_id
    assert (found.started_at, found.ended_at) == (T0, end)
    assert (peers["early"].left_at, peers["early"].left_inferred) == (
        T0 + timedelta(seconds=50),
        False,
    )
    assert (peers["v1"].left_at, peers["v1"].left_inferred) == (end, True)
    assert (peers["host"].left_at, peers["host"].leave_reason) == (end, "session_closed")
    assert (peers["late"].left_at, peers["late"].left_inferred) == (end, True)
    assert (found.current_viewers, found.peak_viewers, found.unique_viewers) == (0, 2, 3)


async def test_an_unknown_stream_and_an_unknown_type_are_applied_as_nothing(
    db: Database,
) -> None:
    (stream,) = await _streams(db, 1, StreamStatus.live)
    assert stream.room_id is not None
    nowhere = SessionScript(room_id=uuid.uuid4().hex[:24])
    known = SessionScript(room_id=stream.room_id)
    events = [
        nowhere.join("p", "p", "viewer", T0),
        known.envelope("beam.started.success", T0),
        known.join("v", "v", "viewer", T0),
    ]
    await _store(db, events)
    await _apply_in_one_batch(db, len(events))
    async with db.sessionmaker() as session:
        stored = {e.external_id: e for e in await session.scalars(select(ProviderEvent))}
    assert [stored[e["id"]].stream_id for e in events] == [None, None, stream.id]
    assert all(stored[e["id"]].processed_at is not None for e in events)


def _at_micro(envelope: dict[str, Any], **times: datetime) -> dict[str, Any]:
    """The envelope with these times to the microsecond (rfc3339 writes milliseconds)."""
    for name, value in times.items():
        envelope["data"][name] = value.isoformat().replace("+00:00", "Z")
    return envelope


async def test_figures_read_back_every_peer_time_to_the_microsecond(db: Database) -> None:
    (stream,) = await _streams(db, 1, StreamStatus.live)
    assert stream.room_id is not None
    script = SessionScript(room_id=stream.room_id)
    host_left = T0 + timedelta(minutes=2, microseconds=654321)
    us = timedelta(microseconds=1)
    visits = [
        ("a", T0 + timedelta(seconds=1) + us, T0 + timedelta(seconds=61) + 9 * us),
        ("b", T0 + timedelta(seconds=60) - us, T0 + timedelta(minutes=3) + 7 * us),
        ("a", T0 + timedelta(seconds=61) + 9 * us, None),  # a's reload, touching
    ]
    events = [
        _at_micro(script.join("host", "host", "broadcaster", T0), joined_at=T0),
        _at_micro(script.leave("host", "host", "broadcaster", T0, host_left), left_at=host_left),
    ]
    for n, (user, joined, left) in enumerate(visits):
        events.append(_at_micro(script.join(f"p{n}", user, "viewer", joined), joined_at=joined))
        if left is not None:
            leave = script.leave(f"p{n}", user, "viewer", joined, left)
            events.append(_at_micro(leave, joined_at=joined, left_at=left))
    await _store(db, events)
    await _apply_in_one_batch(db, len(events))

    expected = viewer_stats(
        [Interval(user, joined, left) for user, joined, left in visits], start=T0, end=None, now=NOW
    )
    async with db.sessionmaker() as session:
        found = await session.get(LiveStream, stream.id)
        samples = await TrackingRepository(session).samples(stream.id)
        # Stored as the column types store times (SQLite compares them as text): found by them.
        host = await session.scalar(
            select(StreamPeer.peer_id).where(
                StreamPeer.joined_at == T0, StreamPeer.left_at == host_left
            )
        )
    assert host == "host"
    assert found is not None
    assert found.broadcaster_left_at == host_left
    assert (
        found.total_watch_seconds
        == expected.total_watch_seconds
        == (
            (NOW - visits[0][1]) + (visits[1][2] - visits[1][1])  # type: ignore[operator]
        ).total_seconds()
    )
    assert (found.current_viewers, found.peak_viewers, found.unique_viewers) == (1, 2, 2)
    assert [(s.minute, s.viewers) for s in samples] == expected.per_minute
    assert len(expected.per_minute) == 11
