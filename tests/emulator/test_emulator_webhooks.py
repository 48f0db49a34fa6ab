from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from typing import Any

import pytest

from tests.emulator.conftest import Emu, WebhookSink

WORKSPACE_URL = "http://127.0.0.1:9/workspace-hooks"
HIPAA_SECRET = "hipaa-test-secret"


@pytest.fixture
def emu_overrides() -> dict[str, Any]:
    return {
        "webhook_url": WORKSPACE_URL,
        "webhook_headers": {"X-Workspace-Token": "Tok-1"},
        "hipaa_signature_secret": HIPAA_SECRET,
    }


async def _join_broadcaster(emu: Emu, **room: Any) -> dict[str, Any]:
    created = await emu.room("hooked", **room)
    assert (await emu.join(created["id"], "broadcaster")).status_code == 201
    await emu.drain()
    return created


class TestEnvelope:
    @pytest.mark.asyncio
    async def test_shape(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        room = await _join_broadcaster(emu)

        bodies = [json.loads(r.content) for r in webhook_sink.received]

        assert sorted(b["type"] for b in bodies) == ["peer.join.success", "session.open.success"]
        for body in bodies:
            assert set(body) == {
                "version",
                "id",
                "account_id",
                "app_id",
                "template_id",
                "timestamp",
                "type",
                "data",
            }
            assert body["version"] == "2.0"
            assert uuid.UUID(body["id"]).version == 4
            assert body["account_id"] == emu.config.customer_id
            assert body["app_id"] == emu.config.app_id
            assert body["template_id"] == room["template_id"]
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["timestamp"])

    @pytest.mark.asyncio
    async def test_headers_and_signature(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        await _join_broadcaster(emu)

        request = webhook_sink.received[0]

        assert str(request.url) == WORKSPACE_URL
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-workspace-token"] == "Tok-1"
        expected = hmac.new(HIPAA_SECRET.encode(), request.content, hashlib.sha256).hexdigest()
        assert request.headers["x-100ms-signature"] == expected

    @pytest.mark.asyncio
    async def test_room_webhook_replaces_the_workspace_one(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        hook = {"url": "http://127.0.0.1:9/room-hooks", "headers": {"Authorization": "Basic x"}}

        await _join_broadcaster(emu, webhook=hook)

        urls = {str(r.url) for r in webhook_sink.received}
        assert urls == {hook["url"]}
        assert webhook_sink.received[0].headers["authorization"] == "Basic x"
        assert "x-workspace-token" not in webhook_sink.received[0].headers


class TestDelivery:
    @pytest.mark.asyncio
    async def test_retries_until_200(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        webhook_sink.answer("session.open.success", 500, 201)
        room = await emu.room()

        await emu.join(room["id"], "broadcaster")
        await emu.drain()

        attempts = (await emu.http.get("/_emulator/webhooks")).json()["data"]
        opened = [a for a in attempts if a["type"] == "session.open.success"]
        assert [(a["attempt"], a["status"]) for a in opened] == [(1, 500), (2, 201), (3, 200)]
        assert {"event_id", "url", "timestamp", "room_id", "error"} <= set(opened[0])

    @pytest.mark.asyncio
    async def test_gives_up_after_three_retries(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        webhook_sink.answer("*", *[503] * 10)
        room = await emu.room()

        await emu.join(room["id"], "viewer")
        await emu.drain()

        attempts = [a for a in emu.runtime.state.webhook_attempts if a.type == "peer.join.success"]
        assert [a.attempt for a in attempts] == [1, 2, 3, 4]
        assert {a.status for a in attempts} == {503}

    @pytest.mark.asyncio
    async def test_reset_forgets_everything(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.join(room["id"], "viewer")
        await emu.http.post("/_emulator/faults", json={"kind": "status", "status": 500})

        await emu.http.post("/_emulator/reset")

        assert (await emu.http.get("/_emulator/events")).json()["data"] == []
        assert (await emu.http.get("/_emulator/faults")).json()["data"] == []
        assert (await emu.api("GET", "/rooms")).json()["data"] == []
        info = (await emu.http.get("/_emulator/info")).json()
        assert info["default_template_id"] == emu.config.default_template_id


class TestNoTarget:
    @pytest.fixture
    def emu_overrides(self) -> dict[str, Any]:
        return {}

    @pytest.mark.asyncio
    async def test_events_are_still_logged(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        room = await emu.room()

        await emu.join(room["id"], "viewer")
        await emu.drain()

        assert emu.types() == ["session.open.success", "peer.join.success"]
        assert webhook_sink.received == []

    @pytest.mark.asyncio
    async def test_workspace_url_can_be_set_at_run_time(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        body = {"url": WORKSPACE_URL, "headers": {"X-A": "1"}}
        await emu.http.post("/_emulator/workspace-webhook", json=body)
        room = await emu.room()

        await emu.join(room["id"], "viewer")
        await emu.drain()

        assert len(webhook_sink.received) == 2
        assert webhook_sink.received[0].headers["x-a"] == "1"
