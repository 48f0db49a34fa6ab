"""Who runs the periodic jobs: one process of the cluster at a time.

`RedisLeadership` holds a Redis key with an expiry and renews it; when the leader dies, its key
expires and another process takes over within `ttl` (plus one renewal interval). Without Redis
livestage runs as one process, which is always the leader (`SoleProcess`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage.kit.tasks import STOP_SECONDS, cancel_all

log = structlog.get_logger()

# Renew only our own key, and delete only our own key: another process may hold it by now.
_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return {} else return 0 end"
_RENEW = _IF_OURS.format("redis.call('pexpire', KEYS[1], ARGV[2])")
_RELEASE = _IF_OURS.format("redis.call('del', KEYS[1])")


class Leadership(Protocol):
    @property
    def held(self) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class SoleProcess:
    """One process, no Redis: always the leader."""

    held = True

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisLeadership:
    def __init__(self, redis: Redis, *, key: str, ttl: float) -> None:
        self.redis, self.key, self.ttl = redis, key, ttl
        self.identity = uuid.uuid4().hex
        self._held = False
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._held

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task], timeout=STOP_SECONDS, what="leadership")
            self._task = None
        if self._held:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.eval(_RELEASE, 1, self.key, self.identity)
        self._held = False

    async def claim(self) -> bool:
        """Take the key if it is free, or renew it if it is ours; True while we hold it."""
        milliseconds = int(self.ttl * 1000)
        try:
            if self._held:
                renewed = await self.redis.eval(_RENEW, 1, self.key, self.identity, milliseconds)
                held = bool(renewed)
            else:
                held = bool(await self.redis.set(self.key, self.identity, nx=True, px=milliseconds))
        except (RedisError, OSError) as error:
            # Unsure whether the key is still ours: stop leading until Redis answers again.
            log.warning("leader.redis_unreachable", error=type(error).__name__)
            held = False
        if held != self._held:
            log.info("leader.changed", leading=held)
        self._held = held
        return held

    async def _keep(self) -> None:
        while True:
            await self.claim()
            await asyncio.sleep(self.ttl / 3)
