from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from livestage.streams.intents import JoinIntent
from livestage.streams.joins import JoinRecorder, Watchable, WatchCache

pytestmark = pytest.mark.asyncio


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _loader(calls: list[str], live: bool = True) -> Any:
    async def load() -> Watchable:
        calls.append("load")
        return Watchable("alice", uuid.uuid4(), live, "room", "hms")

    return load


async def test_cache_answers_from_memory_until_the_ttl_passes() -> None:
    ticks, calls = Ticks(), []
    cache = WatchCache(ttl=5, clock=ticks)
    first = await cache.get("Alice", _loader(calls))
    ticks.now = 4.9
    assert await cache.get("alice", _loader(calls)) is first
    ticks.now = 5.1
    assert await cache.get("alice", _loader(calls)) is not first
    assert calls == ["load", "load"]


def _loading(states: list[Watchable], calls: list[str]) -> Any:
    async def load() -> Watchable:
        calls.append("load")
        return states[len(calls) - 1]

    return load


async def test_a_stream_viewers_can_join_is_kept_longer_than_any_other_state() -> None:
    ticks, calls = Ticks(), []
    stream = uuid.uuid4()
    setting_up = Watchable("alice", stream, True, None, "hms", setting_up=True)
    joinable = Watchable("alice", stream, True, "room", "hms")
    load = _loading([setting_up, setting_up, joinable, joinable], calls)
    cache = WatchCache(ttl=30, short_ttl=5, clock=ticks)
    assert await cache.get("alice", load) is setting_up
    ticks.now = 4.9
    await cache.get("alice", load)
    assert calls == ["load"]
    ticks.now = 5.0  # setting up (a failed go-live announces nothing): read again
    assert await cache.get("alice", load) is setting_up
    ticks.now = 10.0
    assert await cache.get("alice", load) is joinable
    ticks.now = 39.9
    assert await cache.get("alice", load) is joinable
    assert calls == ["load", "load", "load"]
    ticks.now = 40.0
    await cache.get("alice", load)
    assert calls == ["load", "load", "load", "load"]


async def test_an_offline_handle_is_read_again_after_the_short_ttl() -> None:
    ticks, calls = Ticks(), []
    offline = Watchable("alice", None, False, None, None)
    cache = WatchCache(ttl=30, short_ttl=5, clock=ticks)
    await cache.get("alice", _loading([offline, offline], calls))
    ticks.now = 5.1
    await cache.get("ALICE", _loading([offline, offline], calls))
    assert calls == ["load", "load"]


async def test_fresh_answers_what_get_would_answer_without_loading() -> None:
    ticks, calls = Ticks(), []
    offline = Watchable("bob", None, False, None, None)
    cache = WatchCache(ttl=30, short_ttl=5, clock=ticks)
    assert cache.fresh("alice") is None
    live = await cache.get("alice", _loader(calls))
    await cache.get("bob", _loading([offline], []))
    assert cache.fresh("ALICE") is live
    assert cache.fresh("bob") is offline
    ticks.now = 5.0  # bob's state is kept the short TTL
    assert cache.fresh("alice") is live
    assert cache.fresh("bob") is None
    ticks.now = 30.0
    assert cache.fresh("alice") is None
    cache.put("alice", live)
    cache.invalidate("alice")
    assert cache.fresh("alice") is None
    assert calls == ["load"]


async def test_an_announced_change_drops_the_entry_at_once() -> None:
    calls: list[str] = []
    cache = WatchCache(ttl=60)
    await cache.get("alice", _loader(calls))
    cache.invalidate("ALICE")
    await cache.get("alice", _loader(calls, live=False))
    assert calls == ["load", "load"]


def _held_loader(calls: list[str], release: asyncio.Event) -> Any:
    """A load that takes until `release` is set."""

    async def load() -> Watchable:
        calls.append("load")
        await release.wait()
        return Watchable("alice", uuid.uuid4(), True, "room", "hms")

    return load


async def test_concurrent_misses_share_one_load() -> None:
    calls: list[str] = []
    release = asyncio.Event()
    slow = _held_loader(calls, release)

    cache = WatchCache(ttl=5)
    waiters = [asyncio.create_task(cache.get("alice", slow)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*waiters)
    assert calls == ["load"]
    assert len({id(a) for a in answers}) == 1


async def test_a_load_overtaken_by_a_change_answers_but_is_not_cached() -> None:
    calls: list[str] = []
    release = asyncio.Event()
    slow = _held_loader(calls, release)

    cache = WatchCache(ttl=60)
    stale = asyncio.create_task(cache.get("alice", slow))
    await asyncio.sleep(0)
    cache.invalidate("alice")  # the stream ended while the old state was being read
    release.set()
    assert (await stale).live
    ended = await cache.get("alice", _loader(calls, live=False))
    assert not ended.live
    assert calls == ["load", "load"]


async def test_a_failed_load_fails_its_waiters_and_is_retried() -> None:
    async def broken() -> Watchable:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    cache = WatchCache(ttl=5)
    results = await asyncio.gather(
        cache.get("alice", broken), cache.get("alice", broken), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    calls: list[str] = []
    assert (await cache.get("alice", _loader(calls))).live
    assert calls == ["load"]


async def test_recorder_keeps_serving_when_its_buffer_is_full() -> None:
    recorder = JoinRecorder(sessionmaker=None, max_pending=2)  # type: ignore[arg-type]
    intent = JoinIntent(uuid.uuid4(), "viewer-1", datetime.now(UTC))
    for _ in range(3):
        recorder.record(intent)
    assert recorder.pending == 2
    assert recorder.dropped == 1


async def test_a_refill_reads_every_other_expired_handle_once() -> None:
    ticks, calls = Ticks(), []
    cache = WatchCache(ttl=30, short_ttl=5, clock=ticks)
    await cache.get("alice", _loader(calls))
    await cache.get("bob", _loader(calls))
    offline = Watchable("carol", None, False, None, None)
    await cache.get("carol", _loading([offline], []))
    ticks.now = 10.0  # carol's short TTL passed, alice's and bob's 30 s have not
    refill = cache.start_refill("alice", limit=10)
    assert refill.others == ["carol"]
    cache.finish_refill(refill, {})
    ticks.now = 30.0
    refill = cache.start_refill("alice", limit=10)
    assert sorted(refill.others) == ["bob", "carol"]
    assert cache.start_refill("dave", limit=10).others == ["alice"]  # the others are being read
    fresh = Watchable("bob", uuid.uuid4(), True, "room", "hms")
    waiting = asyncio.create_task(cache.get("BOB", _loader(calls)))
    await asyncio.sleep(0)
    assert not waiting.done()  # bob waits for the refill reading it
    cache.finish_refill(refill, {"bob": fresh, "carol": offline})
    assert await waiting is fresh
    assert calls == ["load", "load"]
    ticks.now = 35.0  # carol is offline: kept the short TTL only
    assert cache.start_refill("alice", limit=10).others == ["carol"]


async def test_a_refill_that_read_before_an_announced_change_keeps_nothing() -> None:
    ticks, calls = Ticks(), []
    cache = WatchCache(ttl=30, clock=ticks)
    await cache.get("bob", _loader(calls))
    ticks.now = 31.0
    refill = cache.start_refill("alice", limit=10)
    assert refill.others == ["bob"]
    cache.invalidate("bob")  # announced while the refill was reading
    cache.finish_refill(refill, {"bob": Watchable("bob", uuid.uuid4(), True, "old", "hms")})
    assert cache.peek("bob") is None
    assert await cache.get("bob", _loader(calls)) is not None  # read again, not waiting
    assert calls == ["load", "load"]
