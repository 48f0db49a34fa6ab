"""The broker's current state per stream (the first event of every page that connects): one
read per stream however many pages connect, replaced by every update, never older than an
update a page could miss."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from livestage.streams.broker import Current, CurrentStates, LiveBroker, sse_frame

pytestmark = pytest.mark.asyncio


class Reads:
    """A database stand-in: the state it holds, how many reads it served, and a gate that
    holds every read until opened."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state, self.count = state, 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: str) -> dict[str, Any] | None:
        self.count += 1
        read = self.state
        await self.gate.wait()
        return read


def state(viewers: int) -> dict[str, Any]:
    return {"handle": "alice", "status": "live", "viewers": viewers}


async def test_pages_connecting_together_share_one_read() -> None:
    reads = Reads(state(3))
    reads.gate.clear()
    states = CurrentStates(reads)
    pages = [asyncio.create_task(states.get("alice")) for _ in range(50)]
    await asyncio.sleep(0)
    reads.gate.set()
    found = await asyncio.gather(*pages)
    assert reads.count == 1
    assert {c.frame for c in found if c is not None} == {sse_frame(state(3))}
    assert await states.get("alice") == found[0] and reads.count == 1


async def test_an_update_replaces_the_state_without_a_read() -> None:
    reads = Reads(state(3))
    states = CurrentStates(reads)
    states.replace("alice", Current(state(4), sse_frame(state(4))))
    assert (await states.get("alice")) == Current(state(4), sse_frame(state(4)))
    assert reads.count == 0


async def test_a_read_begun_before_an_update_is_not_kept() -> None:
    reads = Reads(state(3))
    reads.gate.clear()
    states = CurrentStates(reads)
    early = asyncio.create_task(states.get("alice"))
    await asyncio.sleep(0)
    states.replace("alice", Current(state(4), sse_frame(state(4))))
    reads.gate.set()
    assert (await early) == Current(state(3), sse_frame(state(3)))
    assert (await states.get("alice")) == Current(state(4), sse_frame(state(4)))


async def test_read_again_after_the_ttl_and_unknown_keys_every_time() -> None:
    now = [0.0]
    reads = Reads(state(3))
    states = CurrentStates(reads, ttl=5.0, clock=lambda: now[0])
    await states.get("alice")
    now[0] = 4.9
    await states.get("alice")
    assert reads.count == 1
    reads.state = state(7)
    now[0] = 5.1
    assert (await states.get("alice")) == Current(state(7), sse_frame(state(7)))
    assert reads.count == 2
    reads.state = None
    assert await states.get("nobody") is None
    assert await states.get("nobody") is None
    assert reads.count == 4


async def test_kept_keys_are_bounded() -> None:
    states = CurrentStates(Reads(None), max_keys=3)
    for n in range(10):
        states.replace(f"h{n}", Current(state(n), sse_frame(state(n))))
        assert sum(states.peek(f"h{k}") is not None for k in range(n + 1)) <= 3
    assert states.peek("h9") is not None


async def test_a_page_sent_a_state_an_update_has_replaced_starts_with_the_update() -> None:
    broker = LiveBroker(refresh=Reads(state(3)))
    sent = await broker.current("alice")
    assert sent is not None
    broker.publish("alice", state(4))  # nobody subscribed yet: no queue holds it
    async with broker.subscribe_after("alice", sent) as frames:
        assert frames.get_nowait() == sse_frame(state(4))
        assert frames.empty()
    again = await broker.current("alice")
    assert again is not None
    async with broker.subscribe_after("alice", again) as frames:
        assert frames.empty()
        broker.publish("alice", state(5))
        assert frames.get_nowait() == sse_frame(state(5))
