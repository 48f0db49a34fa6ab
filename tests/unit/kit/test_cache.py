from __future__ import annotations

import asyncio

import pytest

from livestage.kit.cache import LoadingCache

pytestmark = pytest.mark.asyncio


class Loads:
    def __init__(self) -> None:
        self.count = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> int:
        self.count += 1
        await self.gate.wait()
        return self.count


async def test_kept_until_the_ttl_passes() -> None:
    now = [0.0]
    cache: LoadingCache[str, int] = LoadingCache(ttl=5, clock=lambda: now[0])
    loads = Loads()
    assert await cache.get("k", loads) == 1
    now[0] = 4.9
    assert await cache.get("k", loads) == 1
    now[0] = 5.1
    assert await cache.get("k", loads) == 2


async def test_concurrent_misses_share_one_load() -> None:
    cache: LoadingCache[str, int] = LoadingCache(ttl=5)
    loads = Loads()
    loads.gate.clear()
    waiting = [asyncio.create_task(cache.get("k", loads)) for _ in range(20)]
    await asyncio.sleep(0)
    loads.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 20
    assert loads.count == 1


async def test_a_load_that_began_before_a_change_answers_but_is_not_kept() -> None:
    cache: LoadingCache[str, int] = LoadingCache(ttl=60)
    loads = Loads()
    loads.gate.clear()
    early = asyncio.create_task(cache.get("k", loads))
    await asyncio.sleep(0)
    cache.put("k", 100)
    loads.gate.set()
    assert await early == 1
    assert await cache.get("k", loads) == 100
    cache.invalidate("k")
    assert cache.peek("k") is None
    assert await cache.get("k", loads) == 2


async def test_none_is_not_kept() -> None:
    cache: LoadingCache[str, int | None] = LoadingCache(ttl=60)
    calls = []

    async def nothing() -> None:
        calls.append(1)

    assert await cache.get("k", nothing) is None
    assert await cache.get("k", nothing) is None
    assert len(calls) == 2


async def test_keys_are_bounded() -> None:
    cache: LoadingCache[int, int] = LoadingCache(ttl=60, max_keys=3)
    for n in range(10):
        cache.put(n, n)
        assert sum(cache.peek(k) is not None for k in range(n + 1)) <= 3
    assert cache.peek(9) == 9
