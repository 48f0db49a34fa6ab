"""A small in-process cache for what a crowd asks for at once (the viewer join's stream lookup,
the first event of a live page): each key's value is kept for `ttl` seconds; concurrent misses
for one key share a single load, so when an entry expires under a flash crowd one query
refills it, not one per waiting request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LoadingCache(Generic[K, V]):
    """`get(key, load)`: the kept value, else `load()`'s (kept unless None). A load that began
    before `invalidate` or `put` of its key answers its waiters but is not kept: it may predate
    the change. At most `max_keys` keys: past that, expired entries go, then all of them (a
    bound on memory; what was kept is loaded again)."""

    def __init__(
        self,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.ttl, self._clock, self.max_keys = ttl, clock, max_keys
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        if (pending := self._loading.get(key)) is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._loading[key] = pending
        try:
            found = await load()
        except BaseException as error:
            pending.set_exception(error)
            pending.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            kept = self._loading.get(key) is pending
            if kept:
                del self._loading[key]
        if kept and found is not None:
            self._keep(key, found)
        pending.set_result(found)
        return found

    def peek(self, key: K) -> V | None:
        """The newest value kept, however old (no load)."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: K, value: V) -> None:
        self._loading.pop(key, None)
        self._keep(key, value)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def _keep(self, key: K, value: V) -> None:
        now = self._clock()
        if len(self._entries) >= self.max_keys and key not in self._entries:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self.max_keys:
                self._entries.clear()
        self._entries[key] = (now + self.ttl, value)
