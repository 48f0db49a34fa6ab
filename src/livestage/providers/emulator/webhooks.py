"""Webhook sender with 100ms's delivery rules.

One JSON POST per event to the room's `webhook.url`, else the workspace URL, with the configured
headers verbatim. Only HTTP 200 counts as delivered; anything else (or a connection error) is
retried after each of `webhook_retry_delays`, then dropped. Deliveries run as background tasks, so
two events of one room may arrive in either order, as on the real service.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Mapping
from typing import Any

import httpx

from livestage.providers.emulator.config import EmulatorConfig, system_clock
from livestage.providers.emulator.state import (
    EmulatorState,
    Room,
    WebhookAttempt,
    new_uuid,
    ts_seconds,
)


class TaskSet:
    """Background tasks the emulator owns, so shutdown and tests can wait for or cancel them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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


class WebhookSender:
    def __init__(self, config: EmulatorConfig, state: EmulatorState, tasks: TaskSet) -> None:
        self._config = config
        self._state = state
        self._tasks = tasks
        self._client: httpx.AsyncClient | None = None
        self.workspace_url = config.webhook_url
        self.workspace_headers: dict[str, str] = dict(config.webhook_headers)

    def reset(self, state: EmulatorState) -> None:
        """Log into `state` from now on and forget run-time target changes (keeps the client)."""
        self._state = state
        self.workspace_url = self._config.webhook_url
        self.workspace_headers = dict(self._config.webhook_headers)

    def emit(self, room: Room, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        envelope = {
            "version": "2.0",
            "id": new_uuid(),
            "account_id": self._config.customer_id,
            "app_id": self._config.app_id,
            "template_id": room.template_id,
            "timestamp": ts_seconds(self._config.clock()),
            "type": event_type,
            "data": data,
        }
        self._state.events.append(envelope)
        target = self._target(room)
        if target is not None:
            self._tasks.spawn(self._deliver(envelope, room.id, *target))
        return envelope

    def _target(self, room: Room) -> tuple[str, Mapping[str, str]] | None:
        if room.webhook and room.webhook.get("url"):
            return str(room.webhook["url"]), room.webhook.get("headers") or {}
        if self.workspace_url:
            return self.workspace_url, self.workspace_headers
        return None

    async def _deliver(
        self, envelope: dict[str, Any], room_id: str, url: str, custom: Mapping[str, str]
    ) -> None:
        body = json.dumps(envelope).encode()
        headers = httpx.Headers({"Content-Type": "application/json"})
        headers.update({str(k): str(v) for k, v in custom.items()})
        if self._config.hipaa_signature_secret:
            headers["x-100ms-signature"] = signature(self._config.hipaa_signature_secret, body)
        delays = (0.0, *self._config.webhook_retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            status, error = await self._post(url, body, headers)
            self._record(envelope, room_id, url, attempt, status, error)
            if status == 200:
                return

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
        envelope: dict[str, Any],
        room_id: str,
        url: str,
        attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        self._state.webhook_attempts.append(
            WebhookAttempt(
                event_id=envelope["id"],
                type=envelope["type"],
                room_id=room_id,
                url=url,
                attempt=attempt,
                status=status,
                error=error,
                # Retries wait in real time, so their times come from the real clock.
                timestamp=system_clock(),
            )
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._config.webhook_timeout_seconds,
                transport=self._config.webhook_transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
