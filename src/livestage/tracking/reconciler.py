"""Repair what webhooks missed (100ms retries only 3 times in ~14 s) by asking the provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import LiveStream, StreamStatus
from livestage.providers.base import ProviderError, StreamingProvider
from livestage.streams import lifecycle
from livestage.tracking.metrics import RECONCILER_RUNS
from livestage.tracking.repository import TrackingRepository
from livestage.tracking.service import TrackingConfig, end_stream, fail_unjoined
from livestage.tracking.service import tracking as tracking_service

log = structlog.get_logger()


@dataclass
class ReconcileReport:
    checked: int = 0
    ended: list[LiveStream] = field(default_factory=list)
    peers_closed: int = 0
    rooms_closed: int = 0
    errors: list[str] = field(default_factory=list)


async def reconcile(
    session: AsyncSession,
    provider: StreamingProvider,
    config: TrackingConfig,
    *,
    now: datetime,
) -> ReconcileReport:
    report = ReconcileReport()
    repository = TrackingRepository(session)
    for stream in await repository.active_streams():
        if stream.room_id is None or stream.provider != provider.name:
            continue
        report.checked += 1
        if lifecycle.start_overdue(
            stream.status, stream.created_at, now=now, timeout=config.start_timeout
        ):
            await fail_unjoined(repository, stream, config)
            report.ended.append(stream)
        else:
            await _check_session(repository, provider, stream, report, now=now)
        await tracking_service.recompute(session, stream.id, config, now=now)
    await _close_rooms(repository, provider, report)
    RECONCILER_RUNS.inc()
    # A run that changed nothing is news to no one: it stays out of the console at INFO.
    changed = report.ended or report.peers_closed or report.rooms_closed or report.errors
    (log.info if changed else log.debug)(
        "tracking.reconciled",
        checked=report.checked,
        ended=len(report.ended),
        peers_closed=report.peers_closed,
        rooms_closed=report.rooms_closed,
        errors=len(report.errors),
    )
    return report


async def _check_session(
    repository: TrackingRepository,
    provider: StreamingProvider,
    stream: LiveStream,
    report: ReconcileReport,
    *,
    now: datetime,
) -> None:
    assert stream.room_id is not None
    try:
        active = await provider.get_active_session(stream.room_id)
    except ProviderError as error:
        report.errors.append(f"{stream.room_id}: {error.message}")
        return
    live = stream.status == StreamStatus.live
    if active is None:
        # A starting stream waits for its broadcaster (until the start timeout), not a session.
        if live:
            await end_stream(repository, stream, now, "reconciled_no_session")
            report.ended.append(stream)
        return
    if live:
        stream.session_id = stream.session_id or active.id
    for peer in await repository.peers(stream.id):
        if peer.left_at is None and peer.peer_id not in active.peer_ids:
            peer.left_at, peer.left_inferred = now, True
            peer.leave_reason = "reconciled_gone"
            report.peers_closed += 1


async def _close_rooms(
    repository: TrackingRepository, provider: StreamingProvider, report: ReconcileReport
) -> None:
    """End the provider sessions that End Stream could not (the provider failed then)."""
    in_use = {s.room_id for s in await repository.active_streams()}
    for stream in await repository.rooms_to_close(provider.name):
        if stream.room_id is not None and stream.room_id not in in_use:
            try:
                await provider.end_room(stream.room_id, reason=f"ended by {stream.end_reason}")
            except ProviderError as error:
                report.errors.append(f"{stream.room_id}: {error.message}")
                continue
            report.rooms_closed += 1
        # A newer stream of the influencer uses the room now: its session is not ours to end.
        stream.room_close_pending_since = None
