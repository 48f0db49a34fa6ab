"""Login throttling policy (pure): failures in a window lock the key for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta
    lockout: timedelta


@dataclass(frozen=True, slots=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def locked_for(state: ThrottleState | None, now: datetime) -> timedelta | None:
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return state.locked_until - now


def after_failure(
    state: ThrottleState | None, policy: ThrottlePolicy, now: datetime
) -> ThrottleState:
    window_over = state is None or (
        now - state.window_started_at > policy.window and locked_for(state, now) is None
    )
    if state is None or window_over:
        failures, started = 0, now
    else:
        failures, started = state.failures, state.window_started_at
    failures += 1
    locked_until = now + policy.lockout if failures >= policy.max_failures else None
    return ThrottleState(failures, started, locked_until)
