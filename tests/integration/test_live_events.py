"""`GET /api/live/{handle}/events` over the app (SQLite and PostgreSQL): the first event of a
page is the stream's current state, read once per stream however many pages connect, and
replaced by every update; an unknown handle is the same 404 as `GET /api/live/{handle}`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from starlette.types import Message

from livestage.app import AppState
from tests.support.chat import parse_events
from tests.support.fixtures import create_influencer

pytestmark = pytest.mark.asyncio


class LivePage:
    """An open page's event stream, driven as ASGI: its status, headers and events."""

    def __init__(self, app: FastAPI, handle: str) -> None:
        self.app, self.path = app, f"/api/live/{handle}/events"
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self._arrived = asyncio.Event()
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def events(self) -> list[Any]:
        return [data for name, data in parse_events(self.body) if name == "stream"]

    async def wait_for_events(self, count: int) -> list[Any]:
        while len(self.events()) < count:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), 5)
        return self.events()

    async def open(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 40001),
            "server": ("testserver", 443),
        }
        self._task = asyncio.create_task(self.app(scope, self._incoming.get, self._send))
        await self.wait_for_events(1)

    async def close(self) -> None:
        self._incoming.put_nowait({"type": "http.disconnect"})
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.headers = message["status"], dict(message["headers"])
        else:
            self.body += message.get("body", b"")
        self._arrived.set()


@contextlib.asynccontextmanager
async def pages(app: FastAPI, handle: str, count: int) -> AsyncIterator[list[LivePage]]:
    opened = [LivePage(app, handle) for _ in range(count)]
    try:
        await asyncio.gather(*(p.open() for p in opened))
        yield opened
    finally:
        await asyncio.gather(*(p.close() for p in opened))


@contextlib.contextmanager
def statements(ctx: AppState) -> Iterator[list[str]]:
    sent: list[str] = []

    def remember(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = ctx.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def handle_reads(sent: list[str]) -> list[str]:
    """The handle lookups among `sent` (the worker's own polling may run meanwhile)."""
    return [s for s in sent if "WHERE influencers.handle" in s]


async def test_pages_connecting_together_read_the_stream_once(
    app: FastAPI, ctx: AppState, client: httpx.AsyncClient
) -> None:
    await create_influencer(ctx, "alice")
    expected = (await client.get("/api/live/alice")).json()
    with statements(ctx) as sent:
        async with pages(app, "alice", 30) as opened:
            assert {p.status for p in opened} == {200}
            assert {p.headers[b"content-type"] for p in opened} == {
                b"text/event-stream; charset=utf-8"
            }
            assert all(p.events() == [expected] for p in opened)
            assert all(p.body.startswith(b"retry: 2000\n") for p in opened)
    assert len(handle_reads(sent)) == 1, sent


async def test_every_update_is_the_first_event_of_the_pages_that_connect_after_it(
    app: FastAPI, ctx: AppState
) -> None:
    await create_influencer(ctx, "alice")
    async with pages(app, "alice", 1) as (early,):
        update = {"handle": "alice", "status": "live", "viewers": 7, "peak": 7}
        ctx.broker.publish("alice", update)
        assert (await early.wait_for_events(2))[1] == update
        with statements(ctx) as sent:
            async with pages(app, "ALICE", 3) as late:
                assert all(p.events() == [update] for p in late)
        assert handle_reads(sent) == []


async def test_an_unknown_handle_is_the_404_of_the_live_state(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    state = await client.get("/api/live/nobody")
    events = await client.get("/api/live/nobody/events")
    assert state.status_code == events.status_code == 404
    assert events.json() == state.json()
    assert events.headers["content-type"] == state.headers["content-type"]
