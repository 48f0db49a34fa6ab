"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, no pipelining), for the
scenarios wrk cannot check exactly: every webhook sent is either acknowledged or counted as an
error, and server-sent events are timed per client."""

from __future__ import annotations

import asyncio
import itertools
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
    on_response: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """`connections` clients, each sending its next request when the last one is answered,
    until `seconds` have passed; requests already sent are always waited for. `on_response`
    hears each request's number and status."""
    host, port = _address(base_url)
    counter = itertools.count()
    result = LoadResult()
    began = time.perf_counter()
    deadline = began + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                number = next(counter)
                request = make_request(number)
                result.sent += 1
                start = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - start)
                if on_response is not None:
                    on_response(number, status)
                if 200 <= status < 300:
                    result.ok += 1
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = time.perf_counter() - began
    return result


class SseClient(asyncio.Protocol):
    """One viewer's page holding the live-count event stream open.

    A protocol, not a task reading lines: with 5,000 of them in one load-generator process, a
    task wake-up, `readline()` and `json.loads` per event per viewer made the measuring side
    the bottleneck. Arrival is stamped in `data_received`, the first moment this process can
    see the bytes.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.tail = b""
        self.wanted: bytes | None = None
        self.arrived: asyncio.Future[float] | None = None
        self.transport: asyncio.BaseTransport | None = None

    @classmethod
    async def connect(cls, base_url: str, path: str) -> SseClient:
        host, port = _address(base_url)
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_connection(cls, host, port)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        transport.write(request.encode())
        await client.ready
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        seen = self.tail + data
        if not self.ready.done():
            if len(seen) >= 12 and not seen.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(RuntimeError(f"event stream refused: {seen[:40]!r}"))
                return
            if b"data: " not in seen:
                self.tail = seen  # the response head, still arriving
                return
            self.ready.set_result(None)
        if self.wanted is not None and self.arrived is not None:
            found = seen.find(self.wanted)
            if found >= 0 and found + len(self.wanted) < len(seen):
                after = seen[found + len(self.wanted) : found + len(self.wanted) + 1]
                if not after.isdigit():
                    self.arrived.set_result(at)
                    self.wanted = self.arrived = None
        self.tail = seen[-64:]

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError("event stream closed")
        for future in (self.ready, self.arrived):
            if future is not None and not future.done():
                future.set_exception(error)

    def expect_viewers(self, viewers: int) -> asyncio.Future[float]:
        """A future set to the arrival time of the update saying `viewers`."""
        self.wanted = f'"viewers": {viewers}'.encode()
        self.arrived = asyncio.get_running_loop().create_future()
        return self.arrived

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]
