"""An unhandled error, on the real server: answered at once with the 500 body, logged with a
small traceback, on a connection that stays open, and without stalling other requests."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from livestage.web.errors import UNEXPECTED_MESSAGE
from tests.support.live_server import LiveServer, LiveServerFactory, live_server_factory

__all__ = ["live_server_factory"]

pytestmark = pytest.mark.asyncio
# The stall this guards against lasted 6.5-12 s (about 1.2 MB of rendered traceback written on
# the event loop); the bound leaves room for a loaded machine without letting that back in.
PROMPT = 3.0


async def _boom() -> None:
    raise RuntimeError("boom")


@pytest.fixture
def server(live_server_factory: LiveServerFactory) -> LiveServer:
    live = live_server_factory()  # the default console log format
    live.app.add_api_route("/api/boom", _boom)
    live.app.add_api_route("/boom", _boom)
    return live


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), body


class TestUnexpectedError:
    async def test_the_api_answers_json_at_once(self, server: LiveServer) -> None:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            started = time.perf_counter()
            response = await client.get("/api/boom")
            elapsed = time.perf_counter() - started
        assert response.status_code == 500
        assert response.json() == {"detail": UNEXPECTED_MESSAGE}
        assert elapsed < PROMPT

    async def test_a_page_gets_the_error_page(self, server: LiveServer) -> None:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            started = time.perf_counter()
            response = await client.get("/boom")
            elapsed = time.perf_counter() - started
        assert response.status_code == 500
        assert elapsed < PROMPT
        assert response.headers["content-type"].startswith("text/html")
        assert UNEXPECTED_MESSAGE in response.text

    async def test_the_connection_stays_open(self, server: LiveServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            status, body = await asyncio.wait_for(_exchange(reader, writer, "/api/boom"), 10)
            assert (status, json.loads(body)) == (500, {"detail": UNEXPECTED_MESSAGE})
            status, body = await asyncio.wait_for(_exchange(reader, writer, "/healthz"), 10)
            assert (status, json.loads(body)) == (200, {"status": "ok"})
        finally:
            writer.close()

    async def test_other_requests_are_answered_meanwhile(self, server: LiveServer) -> None:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            await client.get("/healthz")

            async def timed_health() -> float:
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                return time.perf_counter() - started

            errors = [client.get("/api/boom") for _ in range(3)]
            *answers, health = await asyncio.gather(*errors, timed_health())
        assert [a.status_code for a in answers] == [500, 500, 500]
        assert health < PROMPT

    async def test_it_is_logged_once_with_a_small_traceback(
        self,
        server: LiveServer,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        capfd.readouterr()
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            await client.get("/api/boom")
        logged = capfd.readouterr().out  # structlog prints to the process's stdout
        assert "http.unhandled_error" in logged
        assert "RuntimeError: boom" in logged
        assert len(logged) < 25_000
        assert not [r for r in caplog.records if r.name.startswith("uvicorn")]
