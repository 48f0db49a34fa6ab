"""A Redis pub/sub channel carrying JSON messages between the processes of a cluster.

Messages from one process arrive at the others in the order it sent them (one connection sends
them all, one after the other); a process does not receive its own unless built with `echo`.
Delivery is at most once: a process that is not subscribed at the moment a message is published
never sees it, so what a message says must also be readable from the database (pages read the
current state first)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage.kit.tasks import STOP_SECONDS, cancel_all

log = structlog.get_logger()
QUEUE_SIZE = 10_000
RETRY_SECONDS = 1.0
# A command that has not been answered by then is failed: without it a lost reply held its
# caller (and a shutdown waiting for it) for ever. Subscriptions wait on their own terms.
COMMAND_TIMEOUT_SECONDS = 5.0


def redis_client(url: str) -> Redis:
    """A Redis client whose commands and connects give up after COMMAND_TIMEOUT_SECONDS."""
    return Redis.from_url(
        url,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
    )


class RedisBus:
    def __init__(self, redis: Redis, channel: str, *, echo: bool = False) -> None:
        self.redis, self.channel = redis, channel
        # With echo, this process receives its own messages too, in the one order Redis gives
        # every subscriber (chat: every page of a stream shows its messages in the same order).
        self.echo = echo
        self.origin = uuid.uuid4().hex
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        # The messages `publish_now` was given in this turn of the event loop, and their fate.
        self._turn: tuple[list[str], asyncio.Future[None]] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def start(self, deliver: Callable[[dict[str, Any]], object]) -> None:
        """Send what `send` queues, and hand every other process's messages to `deliver`."""
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._receive_loop(deliver)),
        ]

    async def subscribed(self) -> None:
        """Wait until this process receives the channel's messages."""
        await self._subscribed.wait()

    async def stop(self) -> None:
        await cancel_all(self._tasks, timeout=STOP_SECONDS, what=f"bus {self.channel}")
        self._tasks = []

    def send(self, message: dict[str, Any], *, channel: str | None = None) -> None:
        """Publish to this bus's channel, or to `channel` (another process's own channel):
        either way after everything sent before, over the one connection."""
        envelope = json.dumps({"origin": self.origin, "message": message})
        try:
            self._outbox.put_nowait((channel or self.channel, envelope))
        except asyncio.QueueFull:
            self.dropped += 1  # Redis has been unreachable for a while: keep serving

    async def publish_now(self, message: dict[str, Any]) -> None:
        """Publish at once and wait for Redis to take it, outside the queue of `send`: for a
        caller whose own order (a lock it holds) must be the channel's order. What is
        published in one turn of the event loop goes to Redis together, in order (one
        pipeline: one write, one wake-up of Redis on cores it may share with this process)."""
        envelope = json.dumps({"origin": self.origin, "message": message})
        if self._turn is None:
            self._turn = ([], asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_soon(self._publish_turn)
        envelopes, published = self._turn
        envelopes.append(envelope)
        # Shielded: a caller that gives up must not cancel the others' publication.
        await asyncio.shield(published)

    def _publish_turn(self) -> None:
        if self._turn is not None:
            envelopes, published = self._turn
            self._turn = None
            task = asyncio.create_task(self._publish_all(envelopes, published))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish_all(self, envelopes: list[str], published: asyncio.Future[None]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipeline:
                for envelope in envelopes:
                    pipeline.publish(self.channel, envelope)
                await pipeline.execute()
        except Exception as error:
            published.set_exception(error)
            published.exception()  # retrieved here too: its callers may all have gone
        except BaseException:
            published.cancel()
            raise
        else:
            published.set_result(None)

    async def _send_loop(self) -> None:
        while True:
            channel, envelope = await self._outbox.get()
            while True:
                try:
                    await self.redis.publish(channel, envelope)
                    break
                except (RedisError, OSError) as error:
                    log.warning("bus.publish_failed", error=type(error).__name__)
                    await asyncio.sleep(RETRY_SECONDS)

    async def _receive_loop(self, deliver: Callable[[dict[str, Any]], object]) -> None:
        while True:
            try:
                await self._receive(deliver)
            except (RedisError, OSError) as error:
                self._subscribed.clear()
                log.warning("bus.subscription_lost", error=type(error).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def _receive(self, deliver: Callable[[dict[str, Any]], object]) -> None:
        async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            self._subscribed.set()
            async for raw in pubsub.listen():
                envelope = json.loads(raw["data"])
                if self.echo or envelope.get("origin") != self.origin:
                    deliver(envelope["message"])
