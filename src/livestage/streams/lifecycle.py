"""The stream state machine (pure): starting → live → ended, plus failed."""

from __future__ import annotations

from datetime import datetime, timedelta

from livestage.models.live_stream import StreamStatus

ALLOWED: dict[StreamStatus, frozenset[StreamStatus]] = {
    StreamStatus.starting: frozenset({StreamStatus.live, StreamStatus.ended, StreamStatus.failed}),
    StreamStatus.live: frozenset({StreamStatus.ended}),
    StreamStatus.ended: frozenset(),
    StreamStatus.failed: frozenset(),
}


class InvalidTransition(ValueError):
    pass


def can_transition(current: StreamStatus, target: StreamStatus) -> bool:
    return target in ALLOWED[current]


def check_transition(current: StreamStatus, target: StreamStatus) -> StreamStatus:
    if not can_transition(current, target):
        raise InvalidTransition(f"a {current.value} stream cannot become {target.value}")
    return target


def duration_seconds(started_at: datetime | None, ended_at: datetime) -> int:
    return 0 if started_at is None else max(0, int((ended_at - started_at).total_seconds()))


def start_overdue(
    status: StreamStatus, created_at: datetime, *, now: datetime, timeout: timedelta
) -> bool:
    """A stream still waiting for its broadcaster `timeout` after Start Streaming: it fails."""
    return status == StreamStatus.starting and now - created_at > timeout
