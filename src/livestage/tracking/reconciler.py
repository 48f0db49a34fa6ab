"""Repair what webhooks missed (100ms retries only 3 times in ~14 s) by asking the provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import LiveStream, StreamStatus
from livestage.providers.base import ProviderError, StreamingProvider
from livestage.tracking.repository import TrackingRepository
from livestage.tracking.service import TrackingConfig, end_stream
from livestage.tracking.service import tracking as tracking_service

log = structlog.get_logger()


@dataclass
class ReconcileReport:
    checked: int = 0
    ended: list[LiveStream] = field(default_factory=list)
    peers_closed: int = 0
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
        try:
            active = await provider.get_active_session(stream.room_id)
        except ProviderError as error:
            report.errors.append(f"{stream.room_id}: {error.message}")
            continue
        if active is None:
            # A stream still starting may simply not have been joined yet.
            waiting = stream.status == StreamStatus.starting
            if waiting and now - stream.created_at < config.reconnect_grace:
                continue
            await end_stream(repository, stream, now, "reconciled_no_session")
            report.ended.append(stream)
        else:
            stream.session_id = stream.session_id or active.id
            for peer in await repository.peers(stream.id):
                if peer.left_at is None and peer.peer_id not in active.peer_ids:
                    peer.left_at, peer.left_inferred = now, True
                    peer.leave_reason = "reconciled_gone"
                    report.peers_closed += 1
        await tracking_service.recompute(session, stream.id, config, now=now)
    log.info(
        "tracking.reconciled",
        checked=report.checked,
        ended=len(report.ended),
        peers_closed=report.peers_closed,
        errors=len(report.errors),
    )
    return report
