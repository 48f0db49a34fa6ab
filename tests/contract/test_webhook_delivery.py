"""Webhook delivery from the emulator, over real HTTP on loopback, to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from tests.support.emulator import (
    EmulatorHandle,
    StartEmulator,
    WebhookReceiver,
    wait_until,
)

DELAYS = (0.2, 0.4, 0.8)
# Scheduling slack on a busy CI machine; the schedule itself is checked from below exactly.
SLACK = 0.5


def _room(handle: EmulatorHandle, name: str = "stage", **body: object) -> str:
    with handle.api() as api:
        response = api.post("/rooms", json={"name": name, **body})
    assert response.status_code == 200, response.text
    room_id: str = response.json()["id"]
    return room_id


def _one_event(handle: EmulatorHandle, room_id: str) -> None:
    """A join with an unknown role emits exactly one webhook: peer.join.failure."""
    handle.control.join_peer(room_id, user_id="u1", role="nobody", expect=403)


def _gaps(receiver: WebhookReceiver) -> list[float]:
    times = [w.received_at for w in receiver.received]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


class TestRetrySchedule:
    def test_stops_at_the_first_200(
        self, start_emulator: StartEmulator, webhook_receiver: WebhookReceiver
    ) -> None:
        handle = start_emulator(webhook_url=webhook_receiver.url, webhook_retry_delays=DELAYS)
        webhook_receiver.respond_with(500, 204)

        _one_event(handle, _room(handle))
        received = webhook_receiver.wait_for(3)
        time.sleep(DELAYS[2] + SLACK)

        assert len(webhook_receiver.received) == 3
        assert len({w.json()["id"] for w in received}) == 1
        assert {w.body for w in received} == {received[0].body}
        for gap, delay in zip(_gaps(webhook_receiver), DELAYS, strict=False):
            assert delay <= gap < delay + SLACK
        attempts = handle.control.webhooks()
        assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 204), (3, 200)]

    def test_gives_up_after_three_retries(
        self, start_emulator: StartEmulator, webhook_receiver: WebhookReceiver
    ) -> None:
        handle = start_emulator(webhook_url=webhook_receiver.url, webhook_retry_delays=DELAYS)
        webhook_receiver.default_status = 503

        _one_event(handle, _room(handle))
        webhook_receiver.wait_for(4, timeout=5)
        time.sleep(DELAYS[2] + SLACK)

        assert len(webhook_receiver.received) == 4
        gaps = _gaps(webhook_receiver)
        assert all(d <= g < d + SLACK for g, d in zip(gaps, DELAYS, strict=True))
        assert [a["attempt"] for a in handle.control.webhooks()] == [1, 2, 3, 4]

    def test_unreachable_endpoint_counts_as_a_failed_attempt(
        self, emulator: EmulatorHandle
    ) -> None:
        emulator.control.set_workspace_webhook("http://127.0.0.1:9/closed")

        _one_event(emulator, _room(emulator))

        wait_until(lambda: len(emulator.control.webhooks()) == 4)
        attempts = emulator.control.webhooks()
        assert all(a["status"] is None and a["error"] for a in attempts)

    def test_public_targets_fail_without_touching_the_network(
        self, emulator: EmulatorHandle
    ) -> None:
        hook = {"url": "https://streams.example.test/webhooks/100ms", "headers": {}}

        _one_event(emulator, _room(emulator, webhook=hook))

        wait_until(lambda: len(emulator.control.webhooks()) == 4)
        errors = {a["error"] for a in emulator.control.webhooks()}
        assert errors == {
            "ConnectError: the test emulator does not deliver to streams.example.test"
        }

    def test_delivery_does_not_slow_the_request(
        self, start_emulator: StartEmulator, webhook_receiver: WebhookReceiver
    ) -> None:
        handle = start_emulator(webhook_url=webhook_receiver.url, webhook_retry_delays=(2, 2, 2))
        webhook_receiver.default_status = 500
        room_id = _room(handle)

        started = time.monotonic()
        handle.control.join_peer(room_id, user_id="u1", role="viewer")

        assert time.monotonic() - started < 1
        webhook_receiver.wait_for(2)


class TestHeaders:
    def test_room_webhook_headers_pass_verbatim(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        headers = {"X-Livestage-Secret": "S3cr3t Value", "Authorization": "Bearer opaque-123"}
        room_id = _room(emulator, webhook={"url": webhook_receiver.url, "headers": headers})

        _one_event(emulator, room_id)
        (webhook,) = webhook_receiver.wait_for(1)

        assert ("X-Livestage-Secret", "S3cr3t Value") in webhook.raw_headers
        assert ("Authorization", "Bearer opaque-123") in webhook.raw_headers
        assert webhook.headers["content-type"] == "application/json"
        assert webhook.path == "/webhooks/100ms"
        assert "x-100ms-signature" not in webhook.headers

    def test_workspace_webhook_is_used_without_a_room_webhook(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        emulator.control.set_workspace_webhook(webhook_receiver.url, {"X-Workspace": "w-1"})

        _one_event(emulator, _room(emulator))
        (webhook,) = webhook_receiver.wait_for(1)

        assert webhook.headers["x-workspace"] == "w-1"
        assert webhook.json()["type"] == "peer.join.failure"


class TestHipaaSignature:
    @pytest.mark.parametrize("tampered", [False, True])
    def test_signature_verifies(
        self,
        start_emulator: StartEmulator,
        webhook_receiver: WebhookReceiver,
        tampered: bool,
    ) -> None:
        secret = "hipaa-" + str(time.monotonic_ns())
        handle = start_emulator(webhook_url=webhook_receiver.url, hipaa_signature_secret=secret)

        _one_event(handle, _room(handle))
        (webhook,) = webhook_receiver.wait_for(1)

        body = webhook.body + (b" " if tampered else b"")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, webhook.headers["x-100ms-signature"]) is not tampered
