"""Background work that a stop never cuts in half.

Cancelling a task in the middle of a database transaction is not safe on SQLite: SQLAlchemy
treats the cancellation as an exit, invalidates the connection and, when a second cancellation
arrives while it closes it, abandons the driver's connection with its transaction still open.
That connection keeps SQLite's one write lock, and every later writer waits out the busy
timeout. So the background loops (inbox writer, tracking worker, join recorder) run each unit
of work through `uncancelled`: a stop lands between transactions, never inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger()
# How long a stopping process waits for a cancelled loop (`cancel_all`).
STOP_SECONDS = 5.0


async def uncancelled(work: Awaitable[T]) -> T:
    """Await `work` to its end even when the caller is cancelled meanwhile; the caller's
    cancellation is raised once `work` has finished."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            raise  # the work itself was cancelled, not only its caller
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([task])
    failure = None if task.cancelled() else task.exception()
    raise asyncio.CancelledError from failure


async def cancel_all(tasks: Iterable[asyncio.Task[Any]], *, timeout: float, what: str) -> None:
    """Cancel `tasks` and wait for them, at most `timeout`: a task cancelled inside redis-py
    can be left waiting on its connection pool for ever (seen once in a test run, a shutdown
    that never ended), and a process that is stopping must stop."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        _, stuck = await asyncio.wait(pending, timeout=timeout)
        if stuck:
            log.warning("tasks.stop_abandoned", what=what, tasks=len(stuck))
