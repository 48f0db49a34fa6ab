"""On SQLite a batch of events holds the one writer: its size follows the measured cost per
event towards SQLITE_HOLD_SECONDS a transaction."""

from __future__ import annotations

import pytest

from livestage.tracking.worker import (
    SQLITE_FIRST_BATCH,
    SQLITE_HOLD_SECONDS,
    SQLITE_LARGEST_BATCH,
    SQLITE_SMALLEST_BATCH,
    sqlite_batch_after,
)


def test_cheap_events_grow_the_batch_halfway_to_the_hold() -> None:
    seconds = SQLITE_HOLD_SECONDS / 2  # 1,000 events in half the hold: 2,000 would fit
    assert sqlite_batch_after(SQLITE_FIRST_BATCH, 1000, seconds) == 1500


def test_dear_events_shrink_the_batch() -> None:
    seconds = SQLITE_HOLD_SECONDS * 4
    assert sqlite_batch_after(2000, 2000, seconds) == 1250


@pytest.mark.parametrize("seconds", [0.0, 1e-9, 1e-3])
def test_the_batch_never_grows_past_its_largest(seconds: float) -> None:
    size = SQLITE_FIRST_BATCH
    for _ in range(20):
        size = sqlite_batch_after(size, size, seconds)
    assert size == SQLITE_LARGEST_BATCH


def test_the_batch_never_shrinks_past_its_smallest() -> None:
    size = SQLITE_FIRST_BATCH
    for _ in range(20):
        size = sqlite_batch_after(size, size, 60.0)
    assert size == SQLITE_SMALLEST_BATCH


def test_steady_costs_settle_on_the_size_that_holds_the_writer_as_long_as_wanted() -> None:
    per_event = SQLITE_HOLD_SECONDS / 3000
    size = SQLITE_FIRST_BATCH
    for _ in range(20):
        size = sqlite_batch_after(size, size, size * per_event)
    assert abs(size - 3000) <= 2
