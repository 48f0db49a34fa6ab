"""Open live connections are counted while they are open, whatever ends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

from livestage.web.sse import EventStream, Frames

pytestmark = pytest.mark.asyncio


def open_pages() -> float:
    return REGISTRY.get_sample_value("livestage_live_connections", {"kind": "sse"}) or 0.0


async def test_an_event_stream_counts_while_it_is_open() -> None:
    frames: Frames = asyncio.Queue(maxsize=8)
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent = asyncio.Event()

    @asynccontextmanager
    async def subscribe() -> AsyncIterator[Frames]:
        yield frames

    async def send(message: dict[str, Any]) -> None:
        sent.set()

    before = open_pages()
    response = EventStream(b"data: {}\n\n", subscribe, lifetime=10)
    task = asyncio.create_task(response({}, incoming.get, send))
    await asyncio.wait_for(sent.wait(), 2)
    assert open_pages() == before + 1
    incoming.put_nowait({"type": "http.disconnect"})
    await asyncio.wait_for(task, 2)
    assert open_pages() == before
