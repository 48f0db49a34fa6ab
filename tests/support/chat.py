"""Helpers for chat tests: an open chat page (the SSE event stream, driven as ASGI), and
browsers of their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
from fastapi import FastAPI


def browser(app: FastAPI, host: str) -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def parse_events(body: bytes) -> list[tuple[str, Any]]:
    """The named events of an SSE body (comments and the retry hint left out)."""
    events = []
    for block in body.split(b"\n\n"):
        name, data = None, None
        for line in block.decode().splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
        if name is not None:
            events.append((name, data))
    return events


class ChatPage:
    """`GET /api/watch/{handle}/chat/events` on an app, as an open page: every event it got,
    with the monotonic time it arrived."""

    def __init__(self, app: FastAPI, handle: str) -> None:
        self.app, self.handle = app, handle
        self.status: int | None = None
        self.received: list[tuple[float, str, Any]] = []
        self._buffer = b""
        self._arrived = asyncio.Event()
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChatPage:
        path = f"/api/watch/{self.handle}/chat/events"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 40001),
            "server": ("testserver", 443),
            "app": self.app,
        }
        self._task = asyncio.create_task(self.app(scope, self._receive, self._send))
        await self.wait_for(lambda: self.status is not None and self.status != 200 or self.events)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._incoming.put_nowait({"type": "http.disconnect"})
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

    async def _receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self._buffer += message.get("body", b"")
            *complete, self._buffer = self._buffer.split(b"\n\n")
            now = time.monotonic()
            for name, data in parse_events(b"\n\n".join(complete) + b"\n\n"):
                self.received.append((now, name, data))
        self._arrived.set()

    @property
    def events(self) -> list[tuple[str, Any]]:
        return [(name, data) for _, name, data in self.received]

    def named(self, name: str) -> list[Any]:
        return [data for _, event, data in self.received if event == name]

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.named("message")]

    async def wait_for(self, check: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self._arrived.clear()
                await self._arrived.wait()
