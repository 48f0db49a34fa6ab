"""One time budget shared by every outside call a piece of work makes (go-live's 100ms calls).

The work opens a budget (`within`); a client asks `remaining()` before each attempt and each
back-off, so timeouts and retries together never outlast the budget. The budget lives in a
context variable: tasks the work gathers inherit it, other requests never see it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ends_at: ContextVar[float | None] = ContextVar("deadline", default=None)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Calls made in the block share `seconds`; a budget opened inside cannot extend this one."""
    ends_at = time.monotonic() + seconds
    outer = _ends_at.get()
    token = _ends_at.set(ends_at if outer is None else min(outer, ends_at))
    try:
        yield
    finally:
        _ends_at.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget (never negative); None when no budget is open."""
    ends_at = _ends_at.get()
    return None if ends_at is None else max(0.0, ends_at - time.monotonic())
