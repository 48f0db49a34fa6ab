"""Tracking jobs run from the command line: reconcile once, replay webhook history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.errors import ServiceUnavailable
from livestage.kit.time import utc_now
from livestage.providers.hms.provider import HmsProvider
from livestage.streams.broker import LiveBroker
from livestage.tracking.events import EnvelopeError
from livestage.tracking.reconciler import ReconcileReport
from livestage.tracking.service import TrackingConfig
from livestage.tracking.service import tracking as tracking_service
from livestage.tracking.worker import TrackingWorker


@dataclass
class ReplayResult:
    read: int = 0
    new: int = 0
    duplicates: int = 0
    applied: int = 0


def _provider(settings: Settings) -> HmsProvider:
    if not settings.hms_configured:
        raise ServiceUnavailable(
            "set LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET to talk to 100ms"
        )
    return HmsProvider.from_settings(settings)


def _worker(
    settings: Settings, sessionmaker: object, provider: HmsProvider | None
) -> TrackingWorker:
    return TrackingWorker(
        sessionmaker,  # type: ignore[arg-type]
        TrackingConfig.from_settings(settings),
        clock=utc_now,
        broker=LiveBroker(),
        provider=provider,
        poll_seconds=settings.worker_poll_seconds,
        reconcile_seconds=0,
    )


async def reconcile_once(settings: Settings) -> ReconcileReport:
    engine, provider = create_engine(settings), _provider(settings)
    try:
        report = await _worker(settings, create_sessionmaker(engine), provider).reconcile()
        assert report is not None
        return report
    finally:
        await provider.aclose()
        await engine.dispose()


async def replay_history(settings: Settings, *, since: datetime, until: datetime) -> ReplayResult:
    """Feed 100ms's record of sent webhooks through the same inbox as live deliveries."""
    engine, provider = create_engine(settings), _provider(settings)
    sessionmaker = create_sessionmaker(engine)
    result = ReplayResult()
    try:
        async with transaction(sessionmaker) as session:
            async for envelope in provider.webhook_history(since=since, until=until):
                result.read += 1
                try:
                    stored = await tracking_service.ingest(session, "hms", envelope, now=utc_now())
                except EnvelopeError:
                    continue
                result.new += stored
                result.duplicates += not stored
        result.applied = await _worker(settings, sessionmaker, None).drain()
        return result
    finally:
        await provider.aclose()
        await engine.dispose()
