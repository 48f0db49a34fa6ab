"""Webhook sender with 100ms's delivery rules.

One JSON POST per event to the room's `webhook.url`, else the workspace URL, with the configured
headers verbatim. Only HTTP 200 counts as delivered; anything else (or a connection error) is
retried after each of `webhook_retry_delays`, then dropped. Deliveries run as background tasks, so
two events of one room may arrive in either order, as on the real service.

Every event that had a target gets an `EventDelivery` record (the analytics webhook history).
In chaos mode (`WebhookChaos`) each event goes out as several independent copies, each after its
own random delay and with its own retry schedule. A replay re-sends a stored envelope with
`"is_replay": true` added at the top level (same `id`); its attempts count towards the same record.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from hms_emulator.chaos import ChaosPlanner
from hms_emulator.config import (
    Clock,
    EmulatorConfig,
    WebhookChaos,
    system_clock,
)
from hms_emulator.state import (
    EmulatorState,
    EventDelivery,
    Room,
    WebhookAttempt,
    new_uuid,
    ts_seconds,
)

Target = tuple[str, Mapping[str, str]]


class TaskSet:
    """Background tasks the emulator owns, so shutdown and tests can wait for or cancel them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, work: Awaitable[object]) -> asyncio.Task[object]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Copy:
    number: int
    delay: float
    replay: bool


class WebhookSender:
    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        tasks: TaskSet,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._tasks = tasks
        self._clock = clock or config.clock
        self._client: httpx.AsyncClient | None = None
        self.workspace_url = config.webhook_url
        self.workspace_headers: dict[str, str] = dict(config.webhook_headers)
        self.chaos = _planner(config.webhook_chaos)

    def reset(self, state: EmulatorState) -> None:
        """Log into `state` from now on and forget run-time target changes (keeps the client)."""
        self._state = state
        self.workspace_url = self._config.webhook_url
        self.workspace_headers = dict(self._config.webhook_headers)
        self.chaos = _planner(self._config.webhook_chaos)

    def set_chaos(self, settings: WebhookChaos | None) -> None:
        self.chaos = _planner(settings)

    def emit(self, room: Room, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        envelope: dict[str, Any] = {
            "version": "2.0",
            "id": new_uuid(),
            "account_id": self._config.customer_id,
            "app_id": self._config.app_id,
            "template_id": room.template_id,
            "timestamp": ts_seconds(now),
            "type": event_type,
            "data": data,
        }
        self._state.events.append(envelope)
        target = self._target(room)
        if target is not None:
            record = EventDelivery(envelope, room.id, now)
            self._state.deliveries[envelope["id"]] = record
            for copy in self._copies(record, envelope, target, replay=False):
                self._tasks.spawn(copy)
        return envelope

    def replay(self, record: EventDelivery) -> list[Coroutine[Any, Any, bool]]:
        """Deliveries re-sending `record`'s event marked `is_replay` (none without a target)."""
        room = self._state.rooms.get(record.room_id)
        target = self._target(room) if room is not None else None
        if target is None:
            return []
        return self._copies(record, {**record.envelope, "is_replay": True}, target, replay=True)

    def _target(self, room: Room) -> Target | None:
        if room.webhook and room.webhook.get("url"):
            return str(room.webhook["url"]), room.webhook.get("headers") or {}
        if self.workspace_url:
            return self.workspace_url, self.workspace_headers
        return None

    def _copies(
        self, record: EventDelivery, payload: dict[str, Any], target: Target, *, replay: bool
    ) -> list[Coroutine[Any, Any, bool]]:
        delays = self._delays(record, replay)
        body = json.dumps(payload).encode()
        url, headers = target[0], self._headers(body, target[1])
        record.in_flight += len(delays)
        return [
            self._deliver(record, body, url, headers, Copy(number, delay, replay))
            for number, delay in enumerate(delays, start=1)
        ]

    def _delays(self, record: EventDelivery, replay: bool) -> list[float]:
        if self.chaos is None:
            return [0.0]
        delays = self.chaos.delays()
        event = record.envelope
        self._state.chaos_plan.append(
            {"event_id": event["id"], "type": event["type"], "replay": replay, "delays": delays}
        )
        return delays

    def _headers(self, body: bytes, custom: Mapping[str, str]) -> httpx.Headers:
        headers = httpx.Headers({"Content-Type": "application/json"})
        headers.update({str(k): str(v) for k, v in custom.items()})
        if self._config.hipaa_signature_secret:
            headers["x-100ms-signature"] = signature(self._config.hipaa_signature_secret, body)
        return headers

    async def _deliver(
        self, record: EventDelivery, body: bytes, url: str, headers: httpx.Headers, copy: Copy
    ) -> bool:
        try:
            if copy.delay:
                await asyncio.sleep(copy.delay)
            delays = (0.0, *self._config.webhook_retry_delays)
            for attempt, delay in enumerate(delays, start=1):
                if delay:
                    await asyncio.sleep(delay)
                status, error = await self._post(url, body, headers)
                self._record(record, url, attempt, copy, status, error)
                if status == 200:
                    return True
            return False
        finally:
            record.in_flight -= 1

    async def _post(
        self, url: str, body: bytes, headers: httpx.Headers
    ) -> tuple[int | None, str | None]:
        try:
            response = await self._http().post(url, content=body, headers=headers)
        except Exception as exc:
            # Any failure to deliver (refused, timed out, blocked by a test's network guard) is
            # a failed attempt to retry, never a crash of the sender.
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _record(
        self,
        record: EventDelivery,
        url: str,
        attempt: int,
        copy: Copy,
        status: int | None,
        error: str | None,
    ) -> None:
        record.attempts += 1
        record.last_status_code = status
        record.delivered = record.delivered or status == 200
        self._state.webhook_attempts.append(
            WebhookAttempt(
                event_id=record.envelope["id"],
                type=record.envelope["type"],
                room_id=record.room_id,
                url=url,
                attempt=attempt,
                status=status,
                error=error,
                # Retries wait in real time, so their times come from the real clock.
                timestamp=system_clock(),
                copy=copy.number,
                replay=copy.replay,
            )
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No pool timeout: a burst of thousands of events waits for a free connection
            # instead of failing deliveries the receiver never saw.
            timeout = httpx.Timeout(self._config.webhook_timeout_seconds, pool=None)
            self._client = httpx.AsyncClient(
                timeout=timeout,
                transport=self._config.webhook_transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _planner(settings: WebhookChaos | None) -> ChaosPlanner | None:
    return ChaosPlanner(settings) if settings is not None else None
