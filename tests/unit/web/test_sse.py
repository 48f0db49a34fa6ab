"""EventStream: the SSE response behind /api/live/{handle}/events, driven as ASGI directly."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from livestage.streams.broker import KEEP_ALIVE, LiveBroker, sse_frame
from livestage.web.sse import EventStream

pytestmark = pytest.mark.asyncio


class Client:
    """The ASGI server's side: what the response sent, and a disconnect to deliver."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.arrived.set()

    def disconnect(self) -> None:
        self._incoming.put_nowait({"type": "http.disconnect"})

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    async def wait_for(self, chunk: bytes) -> None:
        while chunk not in self.body:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 2)


def stream(broker: LiveBroker, *, lifetime: float = 10) -> EventStream:
    first = sse_frame({"handle": "alice", "viewers": 0})
    return EventStream(first, partial(broker.subscribe, "alice"), lifetime=lifetime)


async def test_the_current_state_then_every_change_in_order() -> None:
    broker, client = LiveBroker(), Client()
    task = asyncio.create_task(stream(broker)(scope={}, receive=client.receive, send=client.send))
    await client.wait_for(b'"viewers": 0')
    start = client.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert broker.publish("alice", {"handle": "alice", "viewers": 1}) == 1
    assert broker.publish("alice", {"handle": "alice", "viewers": 2}) == 1
    await client.wait_for(b'"viewers": 2')
    assert client.body == (
        b'event: stream\ndata: {"handle": "alice", "viewers": 0}\n\n'
        b'event: stream\ndata: {"handle": "alice", "viewers": 1}\n\n'
        b'event: stream\ndata: {"handle": "alice", "viewers": 2}\n\n'
    )
    client.disconnect()
    await asyncio.wait_for(task, 2)


async def test_a_disconnect_ends_the_stream_and_its_subscription() -> None:
    broker, client = LiveBroker(), Client()
    task = asyncio.create_task(stream(broker)(scope={}, receive=client.receive, send=client.send))
    await client.wait_for(b"viewers")
    assert broker.subscriber_count("alice") == 1
    client.disconnect()
    await asyncio.wait_for(task, 2)
    assert broker.subscriber_count("alice") == 0
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_the_brokers_keep_alives_reach_every_page_and_end_it_after_its_lifetime() -> None:
    broker, pages = LiveBroker(), [Client(), Client()]
    broker.start(heartbeat_seconds=0.05)
    try:
        served = [
            stream(broker, lifetime=0.3)(scope={}, receive=p.receive, send=p.send) for p in pages
        ]
        await asyncio.wait_for(asyncio.gather(*served), 2)
    finally:
        await broker.stop()
    for page in pages:
        assert page.body.count(KEEP_ALIVE) >= 3
        assert page.sent[-1]["more_body"] is False
    assert broker.subscriber_count() == 0


async def test_a_slow_reader_keeps_only_the_newest_updates() -> None:
    broker = LiveBroker()
    async with broker.subscribe("alice") as frames:
        for viewers in range(100):
            broker.publish("alice", {"viewers": viewers})
        kept = [frames.get_nowait() for _ in range(frames.qsize())]
    assert kept[-1] == sse_frame({"viewers": 99})
    assert len(kept) < 100
