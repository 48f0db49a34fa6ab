"""In-process fan-out of live stream updates to open pages (SSE): one process serves its own
subscribers.

An update is encoded once, as the SSE frame every subscriber sends: with thousands of pages on
one stream, encoding per subscriber was most of the cost of a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

QUEUE_SIZE = 16
# Open event streams get a keep-alive comment this often (proxies close idle connections).
HEARTBEAT_SECONDS = 15.0
KEEP_ALIVE = b": keep-alive\n\n"


class LiveBroker:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._listeners: list[Callable[[str], object]] = []
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self, *, heartbeat_seconds: float) -> None:
        """Every `heartbeat_seconds`, a keep-alive comment to every subscriber: one timer for
        all open pages, instead of a timeout per page around every wait for an update."""
        self._heartbeat = asyncio.create_task(self._beat(heartbeat_seconds))

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    async def _beat(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            for queues in self._subscribers.values():
                for queue in queues:
                    if not queue.full():
                        queue.put_nowait(KEEP_ALIVE)

    def on_publish(self, listener: Callable[[str], object]) -> None:
        """Call `listener(key)` on every publish (caches of per-stream state drop the key)."""
        self._listeners.append(listener)

    def publish(self, key: str, message: dict[str, Any]) -> int:
        """Deliver to every subscriber of `key`; a slow one keeps only the newest messages."""
        for listener in self._listeners:
            listener(key)
        queues = self._subscribers.get(key, set())
        if not queues:
            return 0
        frame = sse_frame(message)
        for queue in queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)
        return len(queues)

    @asynccontextmanager
    async def subscribe(self, key: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A queue of SSE frames (`sse_frame`) for `key`'s updates."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[key].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[key].discard(queue)
            if not self._subscribers[key]:
                del self._subscribers[key]

    def subscriber_count(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._subscribers.get(key, ()))
        return sum(len(queues) for queues in self._subscribers.values())


def sse_frame(message: dict[str, Any]) -> bytes:
    """One server-sent event named `stream` carrying `message` as JSON."""
    return b"event: stream\ndata: " + json.dumps(message).encode() + b"\n\n"
