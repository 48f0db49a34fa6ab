"""The viewer join hot path: which stream a handle can be watched on (cached briefly), and the
join intents, written in batches.

A flash crowd sends thousands of joins a second to a few streams. Looking the stream up in the
database for each, and committing one row per join, would make SQLite's single writer the
limit. Instead a stream's watchable state is cached (and dropped at once when any process
announces a change), and join intents are buffered and inserted by one
background task, many rows per transaction. The trade-off, chosen on purpose: intents are
analytics, not money, so a crash loses at most the last flush interval of them, while the
viewer's token never waits for a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.db import transaction
from livestage.kit.cache import LoadingCache
from livestage.kit.tasks import uncancelled
from livestage.streams.intents import JoinIntent, pack
from livestage.streams.repository import ViewerJoinRepository
from livestage.streams.viewers import ViewerCookie

log = structlog.get_logger()

# Join intents packed in one turn of the event loop, at most (a little more: whole batches).
PACKED_PER_TURN = 2_000


@dataclass(frozen=True, slots=True)
class Watchable:
    """What a join needs to know about a handle, as plain values (no session attached)."""

    handle: str
    stream_id: uuid.UUID | None
    live: bool
    room_id: str | None
    provider: str | None
    # Start Streaming is still waiting for the provider's room (`starting`, no room yet).
    setting_up: bool = False

    @property
    def joinable(self) -> bool:
        """Open, with its room: the state only an announced change ends."""
        return self.live and self.stream_id is not None and not self.setting_up


class WatchCache(LoadingCache[str, Watchable]):
    """A handle's watchable state, whatever the handle's case (see `LoadingCache`: when an
    entry expires under a flash crowd, one query refills it).

    A stream viewers can join is kept `ttl` seconds: every change to it is announced (here and,
    through Redis, in every process) and drops it at once, so the TTL only bounds an
    announcement Redis lost. Any other state (offline, setting up) is kept `short_ttl`: a
    go-live that fails while setting up announces nothing. With 200 live streams, a 5 s TTL
    for all meant 40 refills a second, about 4 % of the server's core under a flash crowd."""

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        short_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl, clock=clock)
        self.short_ttl = short_ttl
        self._short_until: dict[str, float] = {}
        self._refilling: dict[str, asyncio.Future[None]] = {}
        self._changes = 0

    def fresh(self, handle: str) -> Watchable | None:
        """The state kept for `handle` while it is in date, else None (then `get`): a crowd's
        join reads it without a coroutine or a loader."""
        key = handle.lower()
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        until = self._short_until.get(key)
        if entry[0] <= now or (until is not None and until <= now):
            return None
        return entry[1]

    async def get(self, handle: str, load: Callable[[], Awaitable[Watchable]]) -> Watchable:
        key = handle.lower()
        until = self._short_until.get(key)
        if until is not None and until <= self._clock():
            self._drop(key)
        if (refill := self._refilling.get(key)) is not None and self._stale(key):
            await asyncio.shield(refill)  # another handle's refill is reading this one too
        found = await super().get(key, load)
        if not found.joinable and key not in self._short_until:
            self._short_until[key] = self._clock() + self.short_ttl
        return found

    def invalidate(self, handle: str) -> None:
        self._drop(handle.lower())
        self._changes += 1

    def start_refill(self, key: str, *, limit: int) -> Refill:
        """The refill of `key` also reads up to `limit` other handles kept but out of date, since
        a crowd's streams, loaded together, expire together (200 handles: 200 reads in a row
        on SQLite's one connection); until `finish_refill`, a request for one of them waits
        for this read instead of making its own."""
        now = self._clock()
        stale = [k for k, (until, _) in self._entries.items() if until <= now]
        stale += [k for k, until in self._short_until.items() if until <= now]
        busy = (key, *self._loading, *self._refilling)
        others = [k for k in dict.fromkeys(stale) if k not in busy][:limit]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for other in others:
            self._refilling[other] = done
        return Refill(others, self._changes, done)

    def finish_refill(self, refill: Refill, found: dict[str, Watchable]) -> None:
        """Keeps the other handles' states the refill read, unless a change was announced
        since it began (what it read may predate the change), and lets their requests go on."""
        if self._changes == refill.read_after:
            for key in refill.others:
                if (watchable := found.get(key)) is not None:
                    self._short_until.pop(key, None)
                    self.put(key, watchable)
                    if not watchable.joinable:
                        self._short_until[key] = self._clock() + self.short_ttl
        for key in refill.others:
            if self._refilling.get(key) is refill.done:
                del self._refilling[key]
        refill.done.set_result(None)

    def _stale(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is None or entry[0] <= self._clock()

    def _drop(self, key: str) -> None:
        super().invalidate(key)
        self._short_until.pop(key, None)


class Refill(NamedTuple):
    """A watch-cache refill under way: the other handles it reads (`WatchCache.start_refill`)."""

    others: list[str]
    read_after: int
    done: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Viewing:
    """What the viewer join keeps between requests: read-only sessions (the join holds no
    request transaction), the watch cache, the join recorder and the viewer cookie."""

    reads: async_sessionmaker[AsyncSession]
    cache: WatchCache
    joins: JoinRecorder
    viewer_cookie: ViewerCookie


class JoinRecorder:
    """Buffers join intents and writes them from one background task, once a second, packed a
    row per stream (streams/intents.py): nothing reads the intents as they come."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self.sessionmaker, self.interval, self.max_pending = sessionmaker, interval, max_pending
        self._pending: list[JoinIntent] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, intent: JoinIntent) -> None:
        if len(self._pending) >= self.max_pending:
            # The database has been unreachable for a while: keep serving joins.
            self.dropped += 1
            return
        self._pending.append(intent)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> int:
        """Insert everything buffered so far in one transaction; returns how many rows."""
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            await uncancelled(self._insert(batch))
        except Exception:
            log.exception("streams.join_intents_write_failed", rows=len(batch))
            return 0
        return len(batch)

    async def _insert(self, intents: list[JoinIntent]) -> None:
        batches, packed = [], 0
        for batch in pack(intents):
            batches.append(batch)
            packed += batch.joins
            if packed >= PACKED_PER_TURN:
                # A second of a crowd's joins is ~12,000: the loop serves requests between.
                packed = 0
                await asyncio.sleep(0)
        async with transaction(self.sessionmaker) as session:
            await ViewerJoinRepository(session).add_many(batches)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
