"""EventStream: frames that queued up while a page was being written to go out in one write
(a busy chat), and an end of stream among them still ends it after they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from livestage.web.sse import EventStream

pytestmark = pytest.mark.asyncio


def queued(*frames: bytes) -> Any:
    @asynccontextmanager
    async def subscribe() -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(16)
        for frame in frames:
            queue.put_nowait(frame)
        yield queue

    return subscribe


async def bodies(stream: EventStream) -> list[bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(stream(scope={}, receive=receive, send=send), 2)
    return [m["body"] for m in sent[1:]]


async def test_frames_queued_behind_one_go_out_in_one_write_then_the_end() -> None:
    frames = [f"event: message\ndata: {n}\n\n".encode() for n in range(3)]
    stream = EventStream(b"retry: 1\n", queued(*frames, b""), lifetime=10)
    assert await bodies(stream) == [b"retry: 1\n", b"".join(frames), b""]


async def test_an_end_alone_ends_at_once() -> None:
    stream = EventStream(b"first\n\n", queued(b""), lifetime=10)
    assert await bodies(stream) == [b"first\n\n", b""]
