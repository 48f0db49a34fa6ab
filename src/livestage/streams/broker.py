"""Fan-out of live stream updates to open pages (SSE). Each process serves its own
subscribers; with Redis (a cluster), every update is also sent once to the other processes,
which fan it out to theirs.

An update is encoded once, as the SSE frame every subscriber sends: with thousands of pages on
one stream, encoding per subscriber was most of the cost of a change.

Updates from other processes can arrive out of order with this process's own (two processes
recompute one stream and publish around the same time), so after one arrives the stream's state
is read again from the database, shortly after, and sent if it differs: every page converges on
what the database says.

A page that connects is first sent its stream's current state, kept per handle (`current`):
every update delivered here replaces it, and a read fills it when missing, so a connect storm
costs one read per stream, not one per page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog

from livestage.kit.bus import RedisBus
from livestage.kit.cache import LoadingCache

log = structlog.get_logger()
QUEUE_SIZE = 16
# Open event streams get a keep-alive comment this often (proxies close idle connections).
HEARTBEAT_SECONDS = 15.0
KEEP_ALIVE = b": keep-alive\n\n"
# After an update from another process, the stream's state is read again this much later.
REFRESH_SECONDS = 0.1
# A stream's current state, when no update replaced it, is read again after this long: a change
# nobody announced (or an update the bus lost) reaches connecting pages within it.
CURRENT_SECONDS = 5.0
CURRENT_KEYS = 10_000

Refresh = Callable[[str], Awaitable[dict[str, Any] | None]]
Frames = asyncio.Queue[bytes]


class LiveBroker:
    def __init__(self, *, bus: RedisBus | None = None, refresh: Refresh | None = None) -> None:
        self.bus, self.refresh = bus, refresh
        self._subscribers: dict[str, set[Frames]] = defaultdict(set)
        self._listeners: list[Callable[[str], object]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._refresh_again: set[str] = set()
        # What pages of each key were last sent (a refresh that reads the same sends nothing).
        self._latest: dict[str, dict[str, Any]] = {}
        self._current = CurrentStates(refresh) if refresh is not None else None

    def start(self, *, heartbeat_seconds: float) -> None:
        """Every `heartbeat_seconds`, a keep-alive comment to every subscriber: one timer for
        all open pages, instead of a timeout per page around every wait for an update."""
        self._heartbeat = asyncio.create_task(self._beat(heartbeat_seconds))
        if self.bus is not None:
            self.bus.start(self._from_another_process)

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        tasks = [t for t in (self._heartbeat, *self._refreshing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._heartbeat = None
        self._refreshing.clear()
        self._refresh_again.clear()

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
        """Deliver to every subscriber of `key`, here and (with Redis) in every other process."""
        if self.bus is not None:
            self.bus.send({"key": key, "update": message})
        if key in self._refreshing:
            self._refresh_again.add(key)
        return self._deliver(key, message)

    def _deliver(self, key: str, message: dict[str, Any]) -> int:
        """To this process's subscribers; a slow one keeps only the newest messages."""
        for listener in self._listeners:
            listener(key)
        frame = sse_frame(message)
        if self._current is not None:
            self._current.replace(key, Current(message, frame))
        queues = self._subscribers.get(key, set())
        if not queues:
            return 0
        self._latest[key] = message
        for queue in queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)
        return len(queues)

    def _from_another_process(self, envelope: dict[str, Any]) -> None:
        key = envelope["key"]
        self._deliver(key, envelope["update"])
        if self.refresh is None:
            return
        if key in self._refreshing:
            self._refresh_again.add(key)
        else:
            self._refreshing[key] = asyncio.create_task(self._refresh(key))

    async def _refresh(self, key: str) -> None:
        """Read the stream's state again and send it, unless an update came while reading (then
        read once more: what was read may be older than that update)."""
        assert self.refresh is not None
        try:
            while True:
                await asyncio.sleep(REFRESH_SECONDS)
                self._refresh_again.discard(key)
                current = await self.refresh(key)
                if key in self._refresh_again:
                    continue
                if current is not None and current != self._latest.get(key):
                    self._deliver(key, current)
                return
        except Exception:
            log.exception("broker.refresh_failed", key=key)
        finally:
            self._refreshing.pop(key, None)
            self._refresh_again.discard(key)

    @asynccontextmanager
    async def subscribe(self, key: str) -> AsyncIterator[Frames]:
        """A queue of SSE frames (`sse_frame`) for `key`'s updates."""
        queue: Frames = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[key].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[key].discard(queue)
            if not self._subscribers[key]:
                del self._subscribers[key]
                self._latest.pop(key, None)

    async def current(self, key: str) -> Current | None:
        """`key`'s state as a page connecting now is first sent it; None for an unknown key."""
        assert self._current is not None, "a broker without `refresh` cannot read states"
        return await self._current.get(key)

    @asynccontextmanager
    async def subscribe_after(self, key: str, sent: Current) -> AsyncIterator[Frames]:
        """`subscribe(key)` for a page already sent `sent`: when an update came in between
        (or `sent` was read before an update and handed out after it), the queue starts with
        the newest state, so the page misses no change."""
        async with self.subscribe(key) as queue:
            newest = self._current.peek(key) if self._current is not None else None
            if newest is not None and newest.frame != sent.frame:
                queue.put_nowait(newest.frame)
            yield queue

    def subscriber_count(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._subscribers.get(key, ()))
        return sum(len(queues) for queues in self._subscribers.values())


def sse_frame(message: dict[str, Any]) -> bytes:
    """One server-sent event named `stream` carrying `message` as JSON."""
    return b"event: stream\ndata: " + json.dumps(message).encode() + b"\n\n"


@dataclass(frozen=True, slots=True)
class Current:
    """A stream's live state and its SSE frame, encoded once for every page sent it."""

    state: dict[str, Any]
    frame: bytes


class CurrentStates:
    """Each key's `Current`, replaced by every update and otherwise read and kept for `ttl`
    seconds. Concurrent misses for one key share a single read; a read that began before an
    update answers its waiters but is not kept (it may predate the update)."""

    def __init__(
        self,
        read: Refresh,
        *,
        ttl: float = CURRENT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = CURRENT_KEYS,
    ) -> None:
        self.read = read
        self._kept: LoadingCache[str, Current | None] = LoadingCache(
            ttl=ttl, clock=clock, max_keys=max_keys
        )

    async def get(self, key: str) -> Current | None:
        return await self._kept.get(key, partial(self._load, key))

    def peek(self, key: str) -> Current | None:
        """The newest state known, however old (no read)."""
        return self._kept.peek(key)

    def replace(self, key: str, current: Current) -> None:
        self._kept.put(key, current)

    async def _load(self, key: str) -> Current | None:
        state = await self.read(key)
        return None if state is None else Current(state, sse_frame(state))
