"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, no pipelining), for the
scenarios wrk cannot check exactly: every webhook sent is either acknowledged or counted as an
error, and server-sent events are timed per client."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def install_fast_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def build_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def closed_loop(
    base_url: str,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
) -> LoadResult:
    """`connections` clients, each sending its next request when the last one is answered,
    until `seconds` have passed; requests already sent are always waited for."""
    host, port = _address(base_url)
    counter = itertools.count()
    result = LoadResult()
    began = time.perf_counter()
    deadline = began + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                request = make_request(next(counter))
                result.sent += 1
                start = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - start)
                if 200 <= status < 300:
                    result.ok += 1
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = time.perf_counter() - began
    return result


class SseClient:
    """One viewer's page holding the live-count event stream open."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, base_url: str, path: str) -> SseClient:
        host, port = _address(base_url)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"event stream refused: {head[:40]!r}")
        client = cls(reader, writer)
        await client.next_update()
        return client

    async def next_update(self) -> dict[str, object]:
        """The next `stream` event's data (chunked framing and keep-alives skipped)."""
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("event stream closed")
            if line.startswith(b"data: "):
                data: dict[str, object] = json.loads(line[6:])
                return data

    async def wait_for_viewers(self, viewers: int) -> float:
        while True:
            update = await self.next_update()
            if update.get("viewers") == viewers:
                return time.perf_counter()

    def close(self) -> None:
        self.writer.close()


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]
