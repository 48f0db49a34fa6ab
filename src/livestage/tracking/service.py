"""Provider events → stream facts. Ingest stores raw events; processing applies them.

Every figure is recomputed from the stored peer rows (a live stream's from those connected at
its checkpoint or later, and what it carried), and every status change only moves forward, so
duplicates, reordering and replays end in the same state as in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.config import Settings
from livestage.kit.db import on_commit
from livestage.models import HlsStatus, LiveStream, StreamStatus
from livestage.streams import lifecycle
from livestage.tracking import figures, metrics
from livestage.tracking.batch import Lookup, PeerBook, PeerRow, StreamFinder
from livestage.tracking.events import RECORDING_KINDS, Envelope, Kind, parse_envelope
from livestage.tracking.repository import (
    EventRepository,
    Lane,
    NewEvent,
    PeerSpan,
    StoredEvent,
    TrackingRepository,
)

log = structlog.get_logger()
MAX_ATTEMPTS = 5
# As long as a stream's room id can be: an event naming a longer one belongs to no stream.
ROOM_ID_MAX = 64
# A live stream's figures are carried to the start of the minute this long before its recompute
# (figures.Checkpoint): later recomputes read only the peers connected since.
CARRY_BEHIND = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    broadcaster_role: str
    reconnect_grace: timedelta
    start_timeout: timedelta = timedelta(seconds=300)
    # Each of the reconciler's provider calls stops here (LIVESTAGE_GO_LIVE_DEADLINE_SECONDS).
    provider_deadline_seconds: float = 12.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackingConfig:
        start_timeout = timedelta(seconds=settings.start_timeout_seconds)
        return cls(
            settings.hms_broadcaster_role,
            settings.reconnect_grace,
            start_timeout,
            settings.go_live_deadline_seconds,
        )


class PeerWrites(Protocol):
    """What ending a stream changes in its peers (TrackingRepository, or a batch's PeerBook)."""

    async def close_open_peers(self, stream_id: uuid.UUID, at: datetime, reason: str) -> None: ...


@dataclass
class BatchResult:
    processed: int = 0
    failed: int = 0
    touched: set[uuid.UUID] = field(default_factory=set)
    # Seconds from each applied event's storage to its application.
    lags: list[float] = field(default_factory=list)
    # (event id, stream id) of the applied; (event id, attempts, error, given up at) of the failed.
    applied_rows: list[tuple[uuid.UUID, uuid.UUID | None]] = field(default_factory=list)
    failed_rows: list[tuple[uuid.UUID, int, str, datetime | None]] = field(default_factory=list)

    def applied(self, event: StoredEvent, stream_id: uuid.UUID | None, now: datetime) -> None:
        self.applied_rows.append((event.id, stream_id))
        self.processed += 1
        self.lags.append(max(0.0, (now - event.received_at).total_seconds()))
        if stream_id is not None:
            self.touched.add(stream_id)

    def failed_one(self, event: StoredEvent, error: Exception, now: datetime) -> None:
        attempts = event.attempts + 1
        message = f"{type(error).__name__}: {error}"[:2000]
        self.failed_rows.append(
            (event.id, attempts, message, now if attempts >= MAX_ATTEMPTS else None)
        )
        self.failed += 1
        log.warning("tracking.event_failed", event_id=event.external_id, error=message)

    def counted(self) -> Callable[[], None]:
        """What counts this batch in the Prometheus figures (run after its commit)."""
        return lambda: metrics.count_applied(self.processed, self.failed, self.lags)


def _new_event(source: str, payload: dict[str, Any], now: datetime) -> NewEvent:
    envelope = parse_envelope(payload)
    room = envelope.room_id if envelope.room_id and len(envelope.room_id) <= ROOM_ID_MAX else None
    return NewEvent(source, envelope.id, envelope.type, payload, envelope.timestamp, now, room)


class TrackingService:
    async def ingest(
        self, session: AsyncSession, source: str, payload: dict[str, Any], *, now: datetime
    ) -> bool:
        """Store the raw event once (duplicates are no-ops). True when it was new."""
        (stored,) = await self.ingest_many(session, [(source, payload)], now=now)
        return stored

    async def ingest_many(
        self, session: AsyncSession, events: list[tuple[str, dict[str, Any]]], *, now: datetime
    ) -> list[bool]:
        """Store raw events in one statement; for each, True when it was new (the first of
        several copies in the same batch counts as the new one)."""
        rows = [_new_event(source, payload, now) for source, payload in events]
        new = await EventRepository(session).insert_many_if_absent(rows)
        stored = []
        for row in rows:
            key = (row.source, row.external_id)
            stored.append(key in new)
            new.discard(key)
        return stored

    async def process_pending(
        self,
        session: AsyncSession,
        config: TrackingConfig,
        *,
        now: datetime,
        limit: int = 200,
        recompute: bool = True,
        lane: Lane | None = None,
    ) -> BatchResult:
        """Apply a batch of stored events (of one lane's rooms, if given), then (unless told
        not to: the caller will) recompute the streams they touched."""
        repository = EventRepository(session)
        events = await repository.claim_unprocessed(limit, lane=lane)
        result = await self._apply_all(session, events, config, now=now)
        if result is None:
            result = await self._apply_each(session, events, config, now=now)
        await repository.mark_applied(result.applied_rows, now)
        await repository.mark_failed(result.failed_rows)
        on_commit(session, result.counted())
        if recompute and result.touched:
            await self.recompute_many(session, result.touched, config, now=now)
        return result

    async def _apply_all(
        self,
        session: AsyncSession,
        events: list[StoredEvent],
        config: TrackingConfig,
        *,
        now: datetime,
    ) -> BatchResult | None:
        """The whole batch under one savepoint: the common case. None when any event failed
        (nothing of the batch is kept)."""
        result = BatchResult()
        try:
            async with session.begin_nested():
                for event, stream_id in await self._apply_batch(session, events, config):
                    result.applied(event, stream_id, now)
        except Exception:
            return None
        return result

    async def _apply_each(
        self,
        session: AsyncSession,
        events: list[StoredEvent],
        config: TrackingConfig,
        *,
        now: datetime,
    ) -> BatchResult:
        """One savepoint per event, so one bad event cannot block the others."""
        result = BatchResult()
        for event in events:
            try:
                async with session.begin_nested():
                    ((_, stream_id),) = await self._apply_batch(session, [event], config)
            except Exception as error:  # one bad event must not block the inbox
                result.failed_one(event, error, now)
                continue
            result.applied(event, stream_id, now)
        return result

    async def _apply_batch(
        self, session: AsyncSession, events: list[StoredEvent], config: TrackingConfig
    ) -> list[tuple[StoredEvent, uuid.UUID | None]]:
        """Apply the events in order; each with the stream it touched. The batch's streams and
        peers are read before and written after, each in a few statements."""
        envelopes = [parse_envelope(event.payload) for event in events]
        lookups = [_lookup(e) if e.kind is not None else None for e in envelopes]
        repository = TrackingRepository(session)
        finder = await StreamFinder.load(repository, [k for k in lookups if k is not None])
        peers = PeerBook(repository)
        await peers.load(
            {
                (stream_id, peer_id)
                for envelope, lookup in zip(envelopes, lookups, strict=True)
                if lookup is not None
                and (peer_id := envelope.text("peer_id"))
                and (stream_id := finder.pick(*lookup)) is not None
            }
        )
        touched = [
            await self._apply(finder, peers, envelope, lookup, config)
            for envelope, lookup in zip(envelopes, lookups, strict=True)
        ]
        for stream_id in {s for s in touched if s is not None}:
            finder.streams[stream_id].figures_stale = True
        carried = {
            stream.id: stream.figures_carried_to
            for stream in finder.streams.values()
            if stream.figures_carried_to is not None
        }
        for stream_id in peers.changed_before(carried):
            finder.streams[stream_id].figures_carried_to = None
        await peers.write()
        await session.flush()
        return list(zip(events, touched, strict=True))

    async def _apply(
        self,
        finder: StreamFinder,
        peers: PeerBook,
        envelope: Envelope,
        lookup: Lookup | None,
        config: TrackingConfig,
    ) -> uuid.UUID | None:
        kind = envelope.kind
        if kind is None or lookup is None:
            return None
        stream = await finder.find(*lookup)
        if stream is None:
            return None
        session_before = stream.session_id
        await HANDLERS.get(kind, _ignore)(peers, stream, envelope, config)
        if stream.status not in (StreamStatus.starting, StreamStatus.failed):
            _adopt_session(stream, envelope)
        finder.session_changed(stream, session_before)
        return stream.id

    async def due_to_end(
        self, session: AsyncSession, config: TrackingConfig, *, now: datetime
    ) -> list[LiveStream]:
        """The candidates `end_after_grace` looks at (it decides on each)."""
        return await TrackingRepository(session).due_to_end(
            left_before=now - config.reconnect_grace, created_before=now - config.start_timeout
        )

    async def has_unprocessed(self, session: AsyncSession) -> bool:
        return await EventRepository(session).has_unprocessed()

    async def stale_streams(self, session: AsyncSession) -> set[uuid.UUID]:
        """Streams whose figures are behind their peer rows (a recompute is owed)."""
        return await TrackingRepository(session).stale_stream_ids()

    async def recompute(
        self, session: AsyncSession, stream_id: uuid.UUID, config: TrackingConfig, *, now: datetime
    ) -> LiveStream | None:
        """The stream's figures from its peer rows; None when another process holds the stream
        (see `recompute_many`)."""
        streams = await self.recompute_many(session, {stream_id}, config, now=now)
        return streams[0] if streams else None

    async def recompute_many(
        self,
        session: AsyncSession,
        stream_ids: set[uuid.UUID],
        config: TrackingConfig,
        *,
        now: datetime,
    ) -> list[LiveStream]:
        """The streams' figures from their peer rows, in a few statements whatever their
        number; returns those recomputed: a stream another process holds (it is recomputing it
        or applying its events) is left for later. Locking first means a recompute never writes
        figures from peers older than another's it would overwrite, and never waits, so
        processes applying events for the same streams cannot deadlock."""
        repository = TrackingRepository(session)
        streams = await repository.lock_streams_unless_locked(stream_ids)
        since = {s.id: _carried(s, now) for s in streams}
        times = {s: None if c is None else figures.instant(c.at) for s, c in since.items()}
        spans = await repository.peer_spans_of(times)
        unique = await repository.unique_viewers_of({s for s, c in since.items() if c})
        samples = {
            s.id: (times[s.id], _refigure(s, spans[s.id], now, since[s.id], unique.get(s.id)))
            for s in streams
        }
        # The peers connected across a checkpoint hold while it stands: replaced when it moves.
        crossing = {
            s.id: _connected_across(spans[s.id], s.figures_carried_to)
            for s in streams
            if times[s.id] is None or s.figures_carried_to != times[s.id]
        }
        await repository.replace_samples_of(samples)
        await repository.replace_checkpoint_peers(crossing)
        return streams

    async def end_after_grace(
        self, session: AsyncSession, config: TrackingConfig, *, now: datetime
    ) -> list[LiveStream]:
        """End live streams whose broadcaster left more than the grace window ago, and fail
        starting streams whose broadcaster did not join within the start timeout."""
        ended = []
        repository = TrackingRepository(session)
        for stream in await self.due_to_end(session, config, now=now):
            away = stream.broadcaster_left_at
            if stream.status == StreamStatus.live and away and now - away > config.reconnect_grace:
                await end_stream(repository, stream, away, "broadcaster_left")
                ended.append(stream)
            elif lifecycle.start_overdue(
                stream.status, stream.created_at, now=now, timeout=config.start_timeout
            ):
                await fail_unjoined(repository, stream, config)
                ended.append(stream)
        if ended:
            await self.recompute_many(session, {s.id for s in ended}, config, now=now)
        return ended


def _carried(stream: LiveStream, now: datetime) -> figures.Checkpoint | None:
    """The checkpoint a live stream's figures are carried to, if it can be used now. An ended
    stream is recomputed from every peer: its end closed its peers and cut its series."""
    at = stream.figures_carried_to
    if at is None or stream.status != StreamStatus.live or stream.ended_at or at > now:
        return None
    return figures.Checkpoint(
        figures.microseconds(at), stream.carried_peak, stream.carried_watch_us
    )


def _refigure(
    stream: LiveStream,
    peers: list[PeerSpan],
    now: datetime,
    since: figures.Checkpoint | None,
    unique: int | None,
) -> list[tuple[datetime, int]]:
    """Set the stream's figures from its peers (pure but for the stream): all of them, or,
    `since` a checkpoint, those connected at it or later and `unique` counted elsewhere. Its
    per-minute series (from the checkpoint on). A live stream's figures are carried again."""
    stream.figures_stale = False
    viewers: list[figures.Span] = [
        (user_id, joined, left)
        for user_id, is_broadcaster, joined, left, _ in peers
        if not is_broadcaster and joined is not None
    ]
    live = stream.status == StreamStatus.live and stream.ended_at is None
    stats = figures.stats_of(
        viewers,
        start=_microseconds(stream.started_at),
        end=_microseconds(stream.ended_at),
        now=figures.microseconds(now),
        since=since,
        unique=unique,
        carry_to=_carry_to(now, since) if live else None,
    )
    stream.current_viewers = stats.current if stream.status == StreamStatus.live else 0
    stream.peak_viewers, stream.unique_viewers = stats.peak, stats.unique
    stream.total_watch_seconds = stats.total_watch_seconds
    stream.avg_watch_seconds = stats.average_watch_seconds
    broadcasters = [
        left
        for _, is_broadcaster, joined, left, _ in peers
        if is_broadcaster and joined is not None
    ]
    if since is None or broadcasters:  # else all left before the checkpoint: as it was
        stream.broadcaster_left_at = _broadcaster_away_since(broadcasters)
    if stream.ended_at is not None:
        stream.duration_seconds = lifecycle.duration_seconds(stream.started_at, stream.ended_at)
    carried = stats.checkpoint
    stream.figures_carried_to = None if carried is None else figures.instant(carried.at)
    if carried is not None:
        stream.carried_peak, stream.carried_watch_us = carried.peak, carried.watched
    return stats.per_minute


def _connected_across(peers: list[PeerSpan], at: datetime | None) -> list[str]:
    """The ids of the peers connected across the instant `at` (none without one): joined
    before it, not left by it (of those connected at a checkpoint or later, the next
    checkpoint's)."""
    if at is None:
        return []
    to = figures.microseconds(at)
    return [
        peer
        for _, _, joined, left, peer in peers
        if joined is not None and joined < to and (left is None or left >= to)
    ]


def _carry_to(now: datetime, since: figures.Checkpoint | None) -> int:
    """The minute's start to carry a live stream's figures to: CARRY_BEHIND before now, so an
    event that arrives late rarely changes what was carried (one that does makes the next
    recompute read every peer); never back."""
    behind = figures.microseconds(now - CARRY_BEHIND)
    at = behind - behind % figures.MINUTE_US
    return at if since is None else max(at, since.at)


def _microseconds(at: datetime | None) -> int | None:
    return None if at is None else figures.microseconds(at)


def _lookup(envelope: Envelope) -> Lookup:
    return envelope.room_id, envelope.session_id, _event_time(envelope)


def _event_time(envelope: Envelope) -> datetime | None:
    for name in ("joined_at", "left_at", "session_started_at", "session_stopped_at"):
        if (value := envelope.time(name)) is not None:
            return value
    return envelope.timestamp


def _adopt_session(stream: LiveStream, envelope: Envelope) -> None:
    """The stream's session is the one its broadcaster is in: a starting stream adopts none (a
    session of viewers alone is not the stream's), and only its own session moves its start."""
    if envelope.session_id and stream.session_id is None:
        stream.session_id = envelope.session_id
    if envelope.session_id not in (None, stream.session_id):
        return
    started = envelope.time("session_started_at")
    if started is not None and (stream.started_at is None or started < stream.started_at):
        stream.started_at = started
        stream.figures_carried_to = None  # its per-minute series may start earlier


def _broadcaster_away_since(lefts: list[int | None]) -> datetime | None:
    """When the broadcaster's last peer left, from their peers' leaves; None while one is
    connected, or none has joined."""
    if not lefts or None in lefts:
        return None
    return figures.instant(max(left for left in lefts if left is not None))


async def _peer(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, config: TrackingConfig
) -> PeerRow | None:
    peer_id = envelope.text("peer_id")
    if peer_id is None:
        return None
    peer = await peers.get(stream.id, peer_id)
    if peer is None:
        peer = peers.add(
            PeerRow(
                stream_id=stream.id,
                peer_id=peer_id,
                user_id=envelope.text("user_id") or peer_id,
                name=envelope.text("user_name") or "",
                role=envelope.text("role") or "",
                is_broadcaster=envelope.text("role") == config.broadcaster_role,
            )
        )
    if peer.joined_at is None:
        peer.joined_at = envelope.time("joined_at")
    if stream.ended_at is not None and peer.left_at is None:
        # A join that arrives after the end: close it at the end until its own leave arrives.
        peer.left_at, peer.left_inferred = stream.ended_at, True
    return peer


async def _on_join(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, config: TrackingConfig
) -> None:
    peer = await _peer(peers, stream, envelope, config)
    if peer is None or not peer.is_broadcaster or peer.joined_at is None:
        return
    if stream.status == StreamStatus.starting:
        stream.status = StreamStatus.live
        stream.started_at = min(filter(None, (stream.started_at, peer.joined_at)))
    if stream.status == StreamStatus.live and stream.session_closed_at is not None:
        closed_at, stream.session_closed_at = stream.session_closed_at, None
        if envelope.session_id == stream.session_id:
            await end_stream(peers, stream, closed_at, "session_closed")
        else:  # the session that closed held viewers alone; the broadcaster's is this one
            stream.session_id = envelope.session_id


async def _on_leave(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, config: TrackingConfig
) -> None:
    peer = await _peer(peers, stream, envelope, config)
    if peer is None:
        return
    left = envelope.time("left_at") or envelope.timestamp
    if peer.left_at is None or peer.left_inferred:
        peer.left_at, peer.left_inferred = left, False
        peer.leave_reason = envelope.text("reason") or envelope.text("message")


async def _on_role_change(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, config: TrackingConfig
) -> None:
    peer = await _peer(peers, stream, envelope, config)
    if peer is not None and (role := envelope.text("role")):
        peer.role, peer.is_broadcaster = role, role == config.broadcaster_role


async def end_stream(
    peers: PeerWrites, stream: LiveStream, at: datetime | None, reason: str
) -> None:
    if stream.status not in (StreamStatus.starting, StreamStatus.live) or at is None:
        return
    stream.status = lifecycle.check_transition(stream.status, StreamStatus.ended)
    stream.ended_at, stream.end_reason = at, reason
    await peers.close_open_peers(stream.id, at, reason)


async def fail_unjoined(peers: PeerWrites, stream: LiveStream, config: TrackingConfig) -> None:
    """The broadcaster never joined within the start timeout: the stream fails then."""
    at = stream.created_at + config.start_timeout
    stream.status = lifecycle.check_transition(stream.status, StreamStatus.failed)
    stream.ended_at, stream.end_reason = at, "broadcaster_never_joined"
    minutes = config.start_timeout.total_seconds() / 60
    stream.failure_reason = (
        f"The broadcaster did not join within {minutes:g} min of Start Streaming."
    )
    await peers.close_open_peers(stream.id, at, "broadcaster_never_joined")


# Ends livestage had to guess the time of: the reconciler's "now" (it found no session), the
# whole-second envelope time of room.end.success. The session's own close time replaces them.
ESTIMATED_ENDS = frozenset({"reconciled_no_session", "room_ended"})


async def _on_session_close(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    stopped = envelope.time("session_stopped_at")
    if (
        stopped is not None
        and stream.status == StreamStatus.ended
        and stream.end_reason in ESTIMATED_ENDS
        and stream.ended_at is not None
        and stream.ended_at != stopped
    ):
        await peers.move_inferred_leaves(stream.id, stream.ended_at, stopped)
        stream.ended_at = stopped
        return
    at = stopped or envelope.timestamp
    if stream.status == StreamStatus.starting:
        # Viewers alone, or a close delivered before the broadcaster's join: viewers never end
        # a stream, but that join, if it comes in this session, ends it then.
        stream.session_id = envelope.session_id or stream.session_id
        stream.session_closed_at = at
        return
    if not _another_session(stream, envelope, at):
        await end_stream(peers, stream, at, "session_closed")


def _another_session(stream: LiveStream, envelope: Envelope, at: datetime | None) -> bool:
    """A close of an earlier session than the broadcaster's (viewers alone), delivered late."""
    if envelope.session_id and stream.session_id:
        return envelope.session_id != stream.session_id
    return at is not None and stream.started_at is not None and at < stream.started_at


async def _on_room_end(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    await end_stream(peers, stream, envelope.timestamp, "room_ended")


async def _on_hls_started(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    stream.hls_url = envelope.text("url") or stream.hls_url
    stream.hls_status, stream.hls_problem = HlsStatus.running, None


async def _on_hls_stopped(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    stream.hls_status = HlsStatus.stopped


async def _on_hls_failure(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    stream.hls_status = HlsStatus.failed
    stream.hls_problem = f"100ms: {envelope.text('error_message') or 'HLS failed'}"[:500]


async def _on_recording(
    peers: PeerBook, stream: LiveStream, envelope: Envelope, _: TrackingConfig
) -> None:
    path = (
        envelope.text("recording_path")
        or envelope.text("hls_vod_recording_path")
        or envelope.text("location")
    )
    entry = {
        "type": envelope.type,
        "path": path,
        "size": envelope.data.get("size"),
        "duration": envelope.data.get("duration"),
    }
    if entry not in stream.recordings:
        stream.recordings = [*stream.recordings, entry]


async def _ignore(*_: Any) -> None:
    return None


HANDLERS = {
    Kind.peer_join: _on_join,
    Kind.peer_leave: _on_leave,
    Kind.role_change: _on_role_change,
    Kind.session_close: _on_session_close,
    Kind.room_end: _on_room_end,
    Kind.hls_started: _on_hls_started,
    Kind.hls_stopped: _on_hls_stopped,
    Kind.hls_failure: _on_hls_failure,
    **dict.fromkeys(RECORDING_KINDS, _on_recording),
}

tracking = TrackingService()
