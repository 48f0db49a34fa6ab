"""Time a request spends waiting on outside services (100ms), reported as `Server-Timing`.

The app's middleware opens a ledger per request; the 100ms client records each call's wall
time in it. Calls made at once (gathered) overlap, so the ledger sums the union of the
intervals: what the request really waited. Whatever else the request took is livestage's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_ledger: ContextVar[list[tuple[float, float]] | None] = ContextVar("waits", default=None)


def open_ledger() -> Token[list[tuple[float, float]] | None]:
    return _ledger.set([])


def close_ledger(token: Token[list[tuple[float, float]] | None]) -> None:
    _ledger.reset(token)


@contextmanager
def waiting() -> Iterator[None]:
    """Record the block's wall time as waiting on an outside service (when a ledger is open)."""
    ledger = _ledger.get()
    start = time.perf_counter()
    try:
        yield
    finally:
        if ledger is not None:
            ledger.append((start, time.perf_counter()))


def waited_seconds() -> float:
    """The union of the recorded intervals, in seconds."""
    return union_length(_ledger.get() or [])


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total
