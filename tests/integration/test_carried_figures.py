"""A live stream's figures carried to a checkpoint (tracking.figures.Checkpoint): its recomputes
read only the peers connected at the checkpoint or later, and give exactly what a recompute
from every peer gives, whatever the order and lateness of its events (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.db import transaction
from livestage.models import Influencer, LiveStream, StreamStatus, StreamStrategy, User, UserRole
from livestage.tracking.figures import Interval, viewer_stats
from livestage.tracking.repository import PeerSpan, TrackingRepository
from livestage.tracking.service import CARRY_BEHIND, TrackingConfig
from livestage.tracking.service import tracking as tracking_service
from tests.support.hms_events import SessionScript

pytestmark = pytest.mark.asyncio
CONFIG = TrackingConfig("broadcaster", timedelta(minutes=10))
T0 = datetime(2026, 12, 3, 12, 0, 20, tzinfo=UTC)
MINUTES = 24


async def _live_stream(sessionmaker: async_sessionmaker[AsyncSession]) -> LiveStream:
    handle = f"carried{secrets.token_hex(3)}"
    async with transaction(sessionmaker) as session:
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
            status=StreamStatus.live,
            title="carried",
            room_id=room,
            started_at=T0,
            created_at=T0 - timedelta(minutes=1),
        )
        session.add(stream)
    return stream


def _events(rng: random.Random, room_id: str) -> list[tuple[datetime, dict[str, Any]]]:
    """Each event with the instant it reaches livestage: most within seconds, one in eight
    later than the checkpoint lags (it changes what was carried). Viewers reload, keep a
    second tab, stay; the broadcaster drops and comes back."""
    script = SessionScript(room_id=room_id)
    events: list[tuple[datetime, dict[str, Any]]] = []

    def send(at: datetime, envelope: dict[str, Any]) -> None:
        late = rng.random() < 1 / 8
        delay = rng.uniform(150, 480) if late else rng.uniform(0, 5)
        events.append((at + timedelta(seconds=delay), envelope))

    host_back = T0 + timedelta(minutes=9)
    send(T0, script.join("host-1", "host", "broadcaster", T0))
    send(host_back, script.leave("host-1", "host", "broadcaster", T0, host_back))
    send(host_back, script.join("host-2", "host", "broadcaster", host_back))
    for n in range(60):
        user = f"u{rng.randrange(12)}"
        joined = T0 + timedelta(seconds=rng.uniform(0, 60 * (MINUTES - 2)))
        send(joined, script.join(f"p{n}", user, "viewer", joined))
        if rng.random() < 0.8:
            left = joined + timedelta(seconds=rng.uniform(1, 420))
            send(left, script.leave(f"p{n}", user, "viewer", joined, left))
    events.sort(key=lambda item: item[0])
    return events


def _expected(stream: LiveStream, peers: list[Any], now: datetime) -> tuple[Any, ...]:
    """The figures from every peer, as the pure functions give them."""
    viewers = [
        Interval(p.user_id, p.joined_at, p.left_at)
        for p in peers
        if not p.is_broadcaster and p.joined_at is not None
    ]
    stats = viewer_stats(viewers, start=stream.started_at, end=stream.ended_at, now=now)
    hosts = [p.left_at for p in peers if p.is_broadcaster and p.joined_at is not None]
    away = None if not hosts or None in hosts else max(h for h in hosts if h is not None)
    figures = (stats.current, stats.peak, stats.unique, stats.total_watch_seconds)
    return figures, stats.average_watch_seconds, stats.per_minute, away


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_carried_figures_equal_every_peers_recomputed(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    stream = await _live_stream(sessionmaker)
    assert stream.room_id is not None
    pending = _events(rng, stream.room_id)
    read: list[tuple[bool, int]] = []  # (carried, peers read) for each recompute
    spans_of = TrackingRepository.peer_spans_of

    async def counting(
        self: TrackingRepository, since: dict[uuid.UUID, datetime | None]
    ) -> dict[uuid.UUID, list[PeerSpan]]:
        spans = await spans_of(self, since)
        read.append((since[stream.id] is not None, len(spans[stream.id])))
        return spans

    monkeypatch.setattr(TrackingRepository, "peer_spans_of", counting)
    carried_before_late = 0
    for minute in range(1, MINUTES + 17):
        now = T0 + timedelta(minutes=minute, seconds=rng.uniform(0, 59))
        arrived = [envelope for at, envelope in pending if at <= now]
        pending = [(at, envelope) for at, envelope in pending if at > now]
        rng.shuffle(arrived)
        async with transaction(sessionmaker) as session:
            for envelope in arrived:
                await tracking_service.ingest(session, "hms", envelope, now=now)
        async with transaction(sessionmaker) as session:
            carried_to = (await session.get(LiveStream, stream.id)).figures_carried_to  # type: ignore[union-attr]
            await tracking_service.process_pending(
                session, CONFIG, now=now, limit=1000, recompute=False
            )
            applied = await session.get(LiveStream, stream.id)
            assert applied is not None
            if carried_to is not None and applied.figures_carried_to is None:
                carried_before_late += 1  # an event changed what was carried
            assert await tracking_service.recompute(session, stream.id, CONFIG, now=now)
        async with sessionmaker() as session:
            got = await session.get(LiveStream, stream.id)
            assert got is not None
            assert got.status == StreamStatus.live and not got.figures_stale
            repository = TrackingRepository(session)
            peers = await repository.peers(stream.id)
            figures, average, per_minute, away = _expected(got, peers, now)
            assert (
                got.current_viewers,
                got.peak_viewers,
                got.unique_viewers,
                got.total_watch_seconds,
            ) == figures
            assert got.avg_watch_seconds == pytest.approx(average, rel=1e-12)
            assert [
                (s.minute, s.viewers) for s in await repository.samples(stream.id)
            ] == per_minute
            assert got.broadcaster_left_at == away
            assert got.figures_carried_to is not None
            assert got.figures_carried_to <= now - CARRY_BEHIND
    assert not pending
    # Both ways were taken: recomputes from a checkpoint, reading fewer peers than the stream
    # has, and from every peer after a late event changed what was carried.
    assert any(carried for carried, _ in read)
    assert carried_before_late > 0
    assert min(count for carried, count in read if carried) < len(peers)
