"""Repair what webhooks missed (100ms retries only 3 times in ~14 s) by asking the provider.

No provider call is made while a transaction is open (on SQLite that would hold the one write
lock for every request, on PostgreSQL the streams' row locks): a short transaction decides
what to ask (`plan`), the calls follow with no session (`ask`), and a second short one records
what the answers still say about streams that did not change meanwhile (`record`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.kit import deadlines
from livestage.models import LiveStream, StreamStatus
from livestage.providers.base import ActiveSession, ProviderError, StreamingProvider
from livestage.streams import lifecycle
from livestage.tracking.metrics import RECONCILER_RUNS
from livestage.tracking.repository import TrackingRepository
from livestage.tracking.service import TrackingConfig, end_stream, fail_unjoined
from livestage.tracking.service import tracking as tracking_service

log = structlog.get_logger()
T = TypeVar("T")
# The provider's client stops at the deadline by itself; this catches one that does not.
BACKSTOP_SECONDS = 1.0


@dataclass
class ReconcileReport:
    checked: int = 0
    ended: list[LiveStream] = field(default_factory=list)
    peers_closed: int = 0
    rooms_closed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Check:
    """An open stream whose provider session is to be asked for, as it was when asked."""

    stream_id: uuid.UUID
    room_id: str
    status: StreamStatus
    open_peers: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Close:
    """An ended stream whose provider room End Stream could not close."""

    stream_id: uuid.UUID
    room_id: str
    reason: str


@dataclass(slots=True)
class Plan:
    checks: list[_Check] = field(default_factory=list)
    closes: list[_Close] = field(default_factory=list)


@dataclass(slots=True)
class Answers:
    """What the provider said, per stream id: its session, or the failure's message."""

    sessions: dict[uuid.UUID, ActiveSession | None] = field(default_factory=dict)
    closed: set[uuid.UUID] = field(default_factory=set)
    errors: dict[uuid.UUID, str] = field(default_factory=dict)


async def plan(
    session: AsyncSession,
    provider: StreamingProvider,
    config: TrackingConfig,
    report: ReconcileReport,
    *,
    now: datetime,
) -> Plan:
    """Fail the streams past their start timeout (no provider needed), and list what to ask."""
    repository = TrackingRepository(session)
    todo = Plan()
    for stream in await repository.active_streams():
        if stream.room_id is None or stream.provider != provider.name:
            continue
        report.checked += 1
        if lifecycle.start_overdue(
            stream.status, stream.created_at, now=now, timeout=config.start_timeout
        ):
            await fail_unjoined(repository, stream, config)
            report.ended.append(stream)
            await tracking_service.recompute(session, stream.id, config, now=now)
            continue
        open_peers = frozenset(await _open_peer_ids(repository, stream.id))
        todo.checks.append(_Check(stream.id, stream.room_id, stream.status, open_peers))
    in_use = {s.room_id for s in await repository.active_streams()}
    for stream in await repository.rooms_to_close(provider.name):
        if stream.room_id is None or stream.room_id in in_use:
            # A newer stream of the influencer uses the room now: its session is not ours to end.
            stream.room_close_pending_since = None
            continue
        todo.closes.append(_Close(stream.id, stream.room_id, f"ended by {stream.end_reason}"))
    return todo


async def ask(provider: StreamingProvider, todo: Plan, *, deadline_seconds: float) -> Answers:
    """The provider's answers, with no session open; each call within its own deadline."""
    answers = Answers()
    for check in todo.checks:
        try:
            found = await _within(deadline_seconds, provider.get_active_session(check.room_id))
        except ProviderError as error:
            answers.errors[check.stream_id] = f"{check.room_id}: {error.message}"
            continue
        answers.sessions[check.stream_id] = found
    for close in todo.closes:
        try:
            await _within(deadline_seconds, provider.end_room(close.room_id, reason=close.reason))
        except ProviderError as error:
            answers.errors[close.stream_id] = f"{close.room_id}: {error.message}"
            continue
        answers.closed.add(close.stream_id)
    return answers


async def record(
    session: AsyncSession,
    todo: Plan,
    answers: Answers,
    config: TrackingConfig,
    report: ReconcileReport,
    *,
    now: datetime,
) -> None:
    """Apply the answers to the streams they are still true of: one whose status changed, or
    that a peer joined, since the question was asked knows better from its events."""
    repository = TrackingRepository(session)
    ids = [c.stream_id for c in todo.checks] + [c.stream_id for c in todo.closes]
    streams = await repository.lock_streams(ids)
    report.errors.extend(answers.errors.values())
    for check in todo.checks:
        stream = streams.get(check.stream_id)
        if stream is None or check.stream_id not in answers.sessions:
            continue
        if stream.status != check.status or stream.room_id != check.room_id:
            continue
        open_now = await _open_peer_ids(repository, stream.id)
        if open_now - check.open_peers:
            continue
        await _apply_session(repository, stream, answers.sessions[check.stream_id], report, now)
        await tracking_service.recompute(session, stream.id, config, now=now)
    for close in todo.closes:
        stream = streams.get(close.stream_id)
        if close.stream_id in answers.closed and stream is not None:
            stream.room_close_pending_since = None
            report.rooms_closed += 1


def log_report(report: ReconcileReport) -> None:
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


async def _apply_session(
    repository: TrackingRepository,
    stream: LiveStream,
    active: ActiveSession | None,
    report: ReconcileReport,
    now: datetime,
) -> None:
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


async def _open_peer_ids(repository: TrackingRepository, stream_id: uuid.UUID) -> set[str]:
    return {p.peer_id for p in await repository.peers(stream_id) if p.left_at is None}


async def _within(seconds: float, call: Awaitable[T]) -> T:
    with deadlines.within(seconds):
        try:
            async with asyncio.timeout(seconds + BACKSTOP_SECONDS):
                return await call
        except TimeoutError as error:
            message = f"the provider did not answer within {seconds:g} s"
            raise ProviderError(message, transient=True) from error
