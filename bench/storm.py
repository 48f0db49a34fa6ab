"""Scenario `storm`: an SSE connect storm, then one count change on every stream.

5,000 viewers' pages (1,000 with --quick) open `GET /api/live/{handle}/events` within 10 s,
open-loop at an even pace (each connect started on time whether or not the earlier ones have
been answered), spread evenly over the live streams. Then one `peer.join` webhook per stream,
sent together: every page must see its stream's count go up by one. Figures: connects that
succeeded, connect time (connect → first event) p50/p99, push time (its stream's webhook sent
→ the update read) p50/p99/max over every page, and the server's peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import httpx

from bench import harness, loadgen
from bench.scenarios import Bed, LiveChannel, _peer_join
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER

CONNECT_TIMEOUT_S = 30.0
PUSH_TIMEOUT_S = 60.0


def storm(bed: Bed) -> dict[str, Any]:
    channels = bed.live_channels()
    with bed.server("storm") as server:
        idle = harness.rss_mb(server.pid)
        found = asyncio.run(
            _storm(
                server,
                channels,
                bed.webhook_secret,
                bed.profile.storm_clients,
                bed.profile.storm_window_s,
            )
        )
    connects, pushes = found["connects"], found["pushes"]
    return {
        "storm_clients": bed.profile.storm_clients,
        "storm_streams": len(channels),
        "storm_connected": len(connects),
        "storm_connect_failed": bed.profile.storm_clients - len(connects),
        "storm_connect_window_s": found["window_s"],
        "storm_connect_p50_ms": loadgen.percentile(connects, 0.5),
        "storm_connect_p99_ms": loadgen.percentile(connects, 0.99),
        "storm_connect_max_ms": max(connects, default=0.0),
        "storm_push_p50_ms": loadgen.percentile(pushes, 0.5),
        "storm_push_p99_ms": loadgen.percentile(pushes, 0.99),
        "storm_push_max_ms": max(pushes, default=0.0),
        "storm_push_missed": len(connects) - len(pushes),
        "storm_webhooks_failed": found["webhooks_failed"],
        "storm_rss_mb": found["rss_mb"],
        "storm_rss_idle_mb": idle,
    }


async def _storm(
    server: harness.Process, channels: list[LiveChannel], secret: str, clients: int, window: float
) -> dict[str, Any]:
    peak = [harness.rss_mb(server.pid)]
    sampler = asyncio.create_task(_sample_rss(server.pid, peak))
    pages: dict[str, list[loadgen.SseClient]] = {c.handle: [] for c in channels}
    connects: list[float] = []

    async def connect(channel: LiveChannel) -> None:
        began = time.perf_counter()
        path = f"/api/live/{channel.handle}/events"
        page = await asyncio.wait_for(
            loadgen.SseClient.connect(server.base_url, path), CONNECT_TIMEOUT_S
        )
        connects.append((time.perf_counter() - began) * 1000)
        pages[channel.handle].append(page)

    tasks = []
    began = time.perf_counter()
    for i in range(clients):
        delay = began + i * window / clients - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(connect(channels[i % len(channels)])))
    await asyncio.gather(*tasks, return_exceptions=True)
    window_s = time.perf_counter() - began
    pushes, failed = await _change_every_stream(server, channels, pages, secret)
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    for page in (p for group in pages.values() for p in group):
        page.close()
    return {
        "connects": connects,
        "pushes": pushes,
        "webhooks_failed": failed,
        "window_s": window_s,
        "rss_mb": max(peak),
    }


async def _change_every_stream(
    server: harness.Process,
    channels: list[LiveChannel],
    pages: dict[str, list[loadgen.SseClient]],
    secret: str,
) -> tuple[list[float], int]:
    """One peer.join per stream, all sent together; each page's delay from its stream's
    webhook being sent to the update arriving (ms), and how many webhooks failed. Pages that
    never saw the update are left out."""
    run = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=len(channels))  # no webhook waits for a connection
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:

        async def change(channel: LiveChannel) -> list[float]:
            state = (await client.get(f"/api/live/{channel.handle}")).json()
            waiting = [p.expect_viewers(state["viewers"] + 1) for p in pages[channel.handle]]
            event = _peer_join(channel.room_id, f"storm-{run}-{channel.handle}")
            # A 100ms session id belongs to one room: the tracking finds the stream by it.
            event["data"]["session_id"] = f"session-{channel.room_id}"
            webhook = _Webhook(server.base_url, event, secret)
            await webhook.connect()
            await barrier.wait()
            sent = time.perf_counter()
            if not await webhook.send():
                # Not acknowledged (refused, or no answer within 30 s): the stream's pages
                # count as missed, unless the event was applied after all.
                failed.append(channel.handle)
            done, missed = await asyncio.wait(waiting, timeout=PUSH_TIMEOUT_S)
            for future in missed:
                future.cancel()  # closing the page later must not leave it an error unread
            return [(f.result() - sent) * 1000 for f in done if f.exception() is None]

        barrier, failed = _Barrier(len(channels)), list[str]()
        delays = await asyncio.gather(*(change(c) for c in channels))
    return [d for group in delays for d in group], len(failed)


class _Webhook:
    """One change webhook, its connection open and its bytes built before the barrier: when
    all 200 leave together, each is on the wire at once. Sent with httpx, building and
    writing them one after another took the bench's own loop about 6 ms each, counted in
    every push time (the server saw the 50 of --quick arrive over 0.36 s)."""

    def __init__(self, base_url: str, event: dict[str, Any], secret: str) -> None:
        self.address = loadgen._address(base_url)
        headers = {"Content-Type": "application/json", WEBHOOK_SECRET_HEADER: secret}
        body = json.dumps(event).encode()
        self.request = loadgen.build_request(
            "POST", "/webhooks/100ms", self.address[0], headers, body
        )
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        self.streams = await asyncio.open_connection(*self.address)

    async def send(self) -> bool:
        """Whether the server acknowledged it (2xx) within 30 s."""
        assert self.streams is not None
        reader, writer = self.streams
        try:
            writer.write(self.request)
            status, _ = await asyncio.wait_for(loadgen.read_response(reader), 30)
            return 200 <= status < 300
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return False
        finally:
            writer.close()


class _Barrier:
    """Every stream's webhook leaves together, once all pages wait for their update."""

    def __init__(self, parties: int) -> None:
        self.parties, self.arrived = parties, 0
        self.event = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            await asyncio.sleep(0.2)  # every reader is parked on its socket
            self.event.set()
        await self.event.wait()


async def _sample_rss(pid: int, peak: list[float]) -> None:
    while True:
        peak.append(harness.rss_mb(pid))
        await asyncio.sleep(0.1)
