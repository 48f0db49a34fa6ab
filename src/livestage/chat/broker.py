"""Fan-out of chat events to open chat pages (SSE), on every process.

With Redis every event goes through one channel that each process, the publishing one included,
receives (`RedisBus(echo=True)`); without Redis (one process) events are delivered here directly.
A new message is published once committed, with its number in its stream (`publish_message`):
messages commit in the order of their numbers, and each process puts what it receives back in
that order (`_from_bus`), so every page, on any process, shows the stream's order.

Chat is a log, not a state: unlike `streams/broker.py`, whose slow pages keep only the newest
update, a page that falls QUEUE_SIZE events behind is closed; the browser reconnects and reads
the history again. The bus is at most once, so the history comes first on every (re)connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.exceptions import RedisError

from livestage.kit.bus import RedisBus
from livestage.streams.broker import KEEP_ALIVE

log = structlog.get_logger()
QUEUE_SIZE = 256
# How long a message waits for one numbered before it that has not arrived. Messages are
# published once committed, so a gap is a message on its way from a busy process (or, rarely,
# one the bus lost): a loaded machine took more than 0.25 s at times.
HOLD_SECONDS = 1.0
# Pages of a key get at most one write this often; what comes in between goes in the next.
# Each write wakes every page of the key, and each page's write is a socket send: with a
# thousand pages on one busy chat over two processes, 0.2 s let posting run 1.6x as fast as
# 0.05 s did, and 0.4 s cut the servers' CPU per message by a fifth again (3.2-3.7 -> 2.8-3.0
# ms at 200 messages/s; bench/results/NOTES.md). A message waits at most this long for its
# write, well inside the second it has to reach every page; one after a quiet spell goes at once.
FLUSH_SECONDS = 0.4
# A flush reaches this many pages per turn of the event loop: a thousand pages' wake-ups in
# one turn kept every other callback waiting, the post that holds the stream's counter until
# its commit among them (and the next post waits for that counter).
SPREAD_PAGES = 50
# web/sse.py's EventStream ends the response at an empty frame.
END = b""


@dataclass(frozen=True, slots=True)
class Opening:
    """What a page is sent first: the history event, and the last message it holds (messages
    of that stream numbered up to `seq` are not sent again)."""

    frame: bytes
    stream_id: str | None
    seq: int


@dataclass(eq=False, slots=True)
class _Page:
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    stream_id: str | None = None
    seq: int = 0
    # While its history is being read, a page's events wait here with their message numbers.
    early: list[tuple[str | None, int | None, bytes]] | None = field(default_factory=list)

    def already_has(self, stream_id: str | None, seq: int | None) -> bool:
        return seq is not None and stream_id == self.stream_id and seq <= self.seq


@dataclass(eq=False, slots=True)
class _Writing:
    """A flush under way: its pages not yet written to, SPREAD_PAGES a turn."""

    batch: list[tuple[str | None, int | None, bytes]]
    pages: list[_Page]
    done: int = 0
    handle: asyncio.Handle | None = None
    # The batch as one write, shared by every page that holds none of it yet.
    joined: bytes = b""
    lowest: int | None = None

    def __post_init__(self) -> None:
        self.joined = b"".join(frame for _, _, frame in self.batch)
        self.lowest = min((seq for _, seq, _ in self.batch if seq is not None), default=None)

    def data_for(self, page: _Page) -> bytes:
        if self.lowest is None or page.seq < self.lowest:
            return self.joined
        # Just opened: its history holds some of the batch.
        return b"".join(f for i, q, f in self.batch if not page.already_has(i, q))


@dataclass(eq=False, slots=True)
class _Order:
    """Where a creator's chat is in its stream's numbering, in this process."""

    stream_id: str | None
    last: int
    held: list[dict[str, Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class ChatBroker:
    def __init__(self, *, bus: RedisBus | None = None) -> None:
        self.bus = bus
        self._pages: dict[str, set[_Page]] = defaultdict(set)
        self._heartbeat: asyncio.Task[None] | None = None
        self._orders: dict[str, _Order] = {}
        self._batches: dict[str, list[tuple[str | None, int | None, bytes]]] = defaultdict(list)
        self._flush_timers: dict[str, asyncio.TimerHandle] = {}
        self._flushed_at: dict[str, float] = {}
        self._writing: dict[str, _Writing] = {}
        self.closed_behind = 0

    def start(self, *, heartbeat_seconds: float) -> None:
        self._heartbeat = asyncio.create_task(self._beat(heartbeat_seconds))
        if self.bus is not None:
            self.bus.start(self._from_bus)

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for order in self._orders.values():
            if order.timer is not None:
                order.timer.cancel()
        self._orders.clear()
        for timer in self._flush_timers.values():
            timer.cancel()
        self._flush_timers.clear()
        for writing in self._writing.values():
            if writing.handle is not None:
                writing.handle.cancel()
        self._writing.clear()
        self._batches.clear()

    async def _beat(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            for pages in self._pages.values():
                for page in pages:
                    if page.early is None and not page.queue.full():
                        page.queue.put_nowait(KEEP_ALIVE)

    def publish(
        self,
        key: str,
        event: str,
        data: dict[str, Any],
        *,
        stream_id: uuid.UUID | None = None,
        seq: int | None = None,
    ) -> None:
        """`event` with `data` to every page of `key` on every process. A message carries its
        stream and number, so a page whose history already held it does not get it twice."""
        envelope = {
            "key": key,
            "event": event,
            "data": data,
            "stream_id": None if stream_id is None else str(stream_id),
            "seq": seq,
        }
        if self.bus is not None:
            self.bus.send(envelope)
        else:
            self._from_bus(envelope)

    async def publish_message(
        self, key: str, data: dict[str, Any], *, stream_id: uuid.UUID, seq: int
    ) -> None:
        """A committed message. It is published at once, not through `send`'s queue, so that
        it rarely arrives after the next one; should Redis fail, it goes through the queue
        (retried). Publishing after the commit keeps the stream's counter locked only from the
        message's number to its commit: the next message waits for no round trip to Redis."""
        envelope = {
            "key": key,
            "event": "message",
            "data": data,
            "stream_id": str(stream_id),
            "seq": seq,
        }
        if self.bus is None:
            self._from_bus(envelope)
            return
        try:
            await self.bus.publish_now(envelope)
        except (RedisError, OSError):
            log.warning("chat.publish_deferred", exc_info=True)
            self.bus.send(envelope)

    def _from_bus(self, envelope: dict[str, Any]) -> None:
        """In the stream's order: messages commit in the order of their numbers but are
        published after their commits, so two processes (or two requests of one) can publish
        them the other way round. A message that comes before one numbered lower is held until
        that one arrives, or for HOLD_SECONDS (the bus may have lost it); events that follow a
        held message wait behind it."""
        key, seq = envelope["key"], envelope.get("seq")
        order = self._orders.get(key)
        if seq is not None and (order is None or order.stream_id != envelope["stream_id"]):
            if order is not None and order.held:
                self._release(key, order, everything=True)
            order = self._orders[key] = _Order(envelope["stream_id"], self._expected(key, envelope))
        if order is None or (not order.held and (seq is None or seq <= order.last + 1)):
            self._deliver(envelope)
            if seq is not None and order is not None:
                order.last = max(order.last, seq)
            return
        order.held.append(envelope)
        if seq is not None and seq == order.last + 1:
            self._release(key, order, everything=False)
        elif order.timer is None:
            loop = asyncio.get_running_loop()
            order.timer = loop.call_later(HOLD_SECONDS, self._release, key, order, True)

    def _expected(self, key: str, envelope: dict[str, Any]) -> int:
        """The number a key's first message here follows: the newest its open pages' histories
        hold, so that one posted just before it, still on its way, is waited for."""
        stream_id, seq = envelope["stream_id"], int(envelope["seq"])
        shown = [
            page.seq
            for page in self._pages.get(key, ())
            if page.early is None and page.stream_id == stream_id
        ]
        return min([seq - 1, *shown])

    def _release(self, key: str, order: _Order, everything: bool) -> None:
        """Deliver what is held in order: up to the first gap, or everything (the wait is over)."""
        held = sorted(order.held, key=lambda e: (e["seq"] is None, e["seq"] or 0))
        numbered = [e for e in held if e["seq"] is not None]
        waiting = [e for e in order.held if e["seq"] is None]
        released = []
        for envelope in numbered:
            if not everything and envelope["seq"] > order.last + 1:
                break
            released.append(envelope)
            order.last = max(order.last, envelope["seq"])
        order.held = [e for e in numbered if e not in released]
        if not order.held:
            released += waiting
            if order.timer is not None:
                order.timer.cancel()
                order.timer = None
        else:
            order.held += waiting
        for envelope in released:
            self._deliver(envelope)

    def _deliver(self, envelope: dict[str, Any]) -> None:
        """To this process's pages: at once when the key's last delivery is FLUSH_SECONDS
        old, else with whatever else comes until then, as one write per page. A page costs a
        wake-up and a socket write per delivery: with a thousand pages on a busy chat, one per
        message was the limit."""
        key = envelope["key"]
        if key not in self._pages:
            return
        frame = event_frame(envelope["event"], envelope["data"])
        self._batches[key].append((envelope.get("stream_id"), envelope.get("seq"), frame))
        if key in self._flush_timers:
            return
        loop = asyncio.get_running_loop()
        wait = self._flushed_at.get(key, -FLUSH_SECONDS) + FLUSH_SECONDS - loop.time()
        if wait <= 0:
            self._flush(key)
        else:
            self._flush_timers[key] = loop.call_later(wait, self._flush, key)

    def _flush(self, key: str) -> None:
        self._flush_timers.pop(key, None)
        batch = self._batches.pop(key, [])
        pages = self._pages.get(key)
        if not batch or not pages:
            return
        self._flushed_at[key] = asyncio.get_running_loop().time()
        self._finish_writing(key)
        self._writing[key] = _Writing(batch, list(pages))
        self._write_some(key)

    def _finish_writing(self, key: str) -> None:
        """An earlier flush still under way is done at once: each page gets batches in order."""
        writing = self._writing.pop(key, None)
        if writing is None:
            return
        if writing.handle is not None:
            writing.handle.cancel()
        for page in writing.pages[writing.done :]:
            self._write_page(key, page, writing)

    def _write_some(self, key: str) -> None:
        writing = self._writing[key]
        end = writing.done + SPREAD_PAGES
        for page in writing.pages[writing.done : end]:
            self._write_page(key, page, writing)
        writing.done = end
        if end < len(writing.pages):
            writing.handle = asyncio.get_running_loop().call_soon(self._write_some, key)
        else:
            del self._writing[key]

    def _write_page(self, key: str, page: _Page, writing: _Writing) -> None:
        if page not in self._pages.get(key, ()):
            return  # gone (or closed behind) since the flush began
        if page.early is not None:
            page.early.extend(writing.batch)
            if len(page.early) >= QUEUE_SIZE:
                self._close_behind(key, page)
            return
        data = writing.data_for(page)
        if not data:
            return
        if page.queue.full():
            self._close_behind(key, page)
        else:
            page.queue.put_nowait(data)

    def _close_behind(self, key: str, page: _Page) -> None:
        """The page stops here and, reconnecting, reads the history: a page that cannot keep
        up never silently misses a message."""
        self.closed_behind += 1
        self._pages[key].discard(page)
        page.early = None
        while not page.queue.empty():
            page.queue.get_nowait()
        page.queue.put_nowait(END)

    @asynccontextmanager
    async def subscribe(
        self, key: str, opening: Callable[[], Awaitable[Opening]]
    ) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A queue of SSE frames: `opening()`'s history first, then every later event. The
        page is subscribed before the history is read, so nothing published in between is
        lost; what the history already holds is not sent again."""
        page = _Page()
        self._pages[key].add(page)
        try:
            first = await opening()
            early, page.early = page.early or [], None
            if page in self._pages[key]:
                page.stream_id, page.seq = first.stream_id, first.seq
                page.queue.put_nowait(first.frame)
                for stream_id, seq, frame in early:
                    if not page.already_has(stream_id, seq):
                        page.queue.put_nowait(frame)
            yield page.queue
        finally:
            self._pages[key].discard(page)
            if not self._pages[key]:
                del self._pages[key]

    def subscriber_count(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._pages.get(key, ()))
        return sum(len(pages) for pages in self._pages.values())


def event_frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"
