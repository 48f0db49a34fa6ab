"""In-process emulator: httpx.ASGITransport for the API, httpx.MockTransport for webhooks.

The `*_http.py` tests here use the real-server fixtures of `tests.support.emulator` instead."""

from __future__ import annotations

import json
import secrets
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from hms_emulator import EmulatorConfig, create_emulator_app
from hms_emulator.runtime import Emulator
from tests.support.fixtures import FakeClock


@dataclass
class WebhookSink:
    """Stands in for a webhook endpoint: answers the statuses queued for the event's type
    (`statuses[type]`, or `statuses["*"]` for any type), then 200."""

    statuses: dict[str, deque[int]] = field(default_factory=dict)
    received: list[httpx.Request] = field(default_factory=list)

    def answer(self, event_type: str, *statuses: int) -> None:
        self.statuses.setdefault(event_type, deque()).extend(statuses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        event_type = json.loads(request.content)["type"]
        for key in (event_type, "*"):
            if self.statuses.get(key):
                return httpx.Response(self.statuses[key].popleft())
        return httpx.Response(200)


@dataclass
class Emu:
    http: httpx.AsyncClient
    runtime: Emulator
    clock: FakeClock

    @property
    def config(self) -> EmulatorConfig:
        return self.runtime.config

    def token(self, *, ttl: timedelta = timedelta(hours=1), **overrides: Any) -> str:
        issued = int(self.clock().timestamp())
        claims: dict[str, Any] = {
            "access_key": self.config.access_key,
            "type": "management",
            "version": 2,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl.total_seconds()),
            **overrides,
        }
        secret = claims.pop("secret", self.config.app_secret)
        return jwt.encode(claims, secret, algorithm="HS256")

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return await self.http.request(method, f"/v2{path}", headers=headers, **kwargs)

    async def room(self, name: str = "stage", **body: Any) -> dict[str, Any]:
        response = await self.api("POST", "/rooms", json={"name": name, **body})
        assert response.status_code == 200, response.text
        room: dict[str, Any] = response.json()
        return room

    async def join(
        self, room_id: str, role: str = "viewer", user_id: str | None = None, **body: Any
    ) -> httpx.Response:
        payload = {"role": role, "user_id": user_id or f"user-{secrets.token_hex(3)}", **body}
        return await self.http.post(f"/_emulator/rooms/{room_id}/peers", json=payload)

    async def drain(self) -> None:
        await self.runtime.tasks.drain()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        events = self.runtime.state.events
        return [e for e in events if event_type is None or e["type"] == event_type]

    def types(self) -> list[str]:
        return [e["type"] for e in self.runtime.state.events]


@pytest.fixture
def webhook_sink() -> WebhookSink:
    return WebhookSink()


@pytest.fixture
def emu_overrides() -> dict[str, Any]:
    """Override in a test module to change the emulator's configuration."""
    return {}


@pytest.fixture
def emu_config(
    clock: FakeClock, webhook_sink: WebhookSink, emu_overrides: dict[str, Any]
) -> EmulatorConfig:
    values: dict[str, Any] = {
        "access_key": f"emu-{secrets.token_hex(6)}",
        "app_secret": secrets.token_hex(32),
        "clock": clock,
        "hls_transition_seconds": 0.0,
        # `drain()` waits for every timer: an empty room's stream stops at once here
        # (test_emulator_sdk_contract.py tests the wait itself).
        "hls_idle_stop_seconds": 0.0,
        "webhook_retry_delays": (0.001, 0.002, 0.003),
        "timeout_fault_seconds": 0.2,
        "replay_events_per_second": None,
        "webhook_transport": httpx.MockTransport(webhook_sink),
    }
    return EmulatorConfig(**{**values, **emu_overrides})


@pytest_asyncio.fixture
async def emu(emu_config: EmulatorConfig, clock: FakeClock) -> AsyncIterator[Emu]:
    application = create_emulator_app(emu_config)
    runtime: Emulator = application.state.emulator
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9000") as http:
        yield Emu(http, runtime, clock)
    await runtime.aclose()
