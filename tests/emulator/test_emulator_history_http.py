"""Webhook history and replay over real HTTP: events lost while the receiver is down show up as
`failed` once their retries are spent, and a replay delivers them, marked, when it is back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.emulator import (
    EmulatorHandle,
    StartEmulator,
    WebhookReceiver,
    join_op,
    leave_op,
    serve_webhook_receiver,
    unused_port,
)

T0 = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)


def _room(handle: EmulatorHandle) -> str:
    with handle.api() as api:
        response = api.post("/rooms", json={"name": f"stage-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 200, response.text
    room_id: str = response.json()["id"]
    return room_id


def _short_session(handle: EmulatorHandle, room_id: str) -> dict[str, Any]:
    host, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    return handle.control.script(
        room_id,
        [
            join_op("host", T0, role="broadcaster", peer_id=host),
            join_op("fan", T0 + timedelta(seconds=5), peer_id=viewer),
            leave_op(viewer, T0 + timedelta(seconds=65)),
            leave_op(host, T0 + timedelta(seconds=70)),
        ],
    )


def _without_replay_flag(webhook: dict[str, Any]) -> dict[str, Any]:
    assert webhook.pop("is_replay") is True
    return webhook


class TestOutage:
    def test_failed_while_down_then_replayed(self, start_emulator: StartEmulator) -> None:
        port = unused_port()
        handle = start_emulator(webhook_url=f"http://127.0.0.1:{port}/webhooks/100ms")
        control = handle.control
        _short_session(handle, _room(handle))

        summary = control.wait_for_deliveries()
        failed = control.webhook_history_all(status="failed")

        assert (summary["events"], summary["failed"], summary["success"]) == (6, 6, 0)
        assert len(failed) == 6
        assert {(r["attempts"], r["last_status_code"]) for r in failed} == {(4, None)}
        assert control.webhook_history(status="success")["pagination"]["total"] == 0

        with serve_webhook_receiver(port) as receiver:
            started = control.replay_webhooks()
            done = control.wait_for_replay(started["workflow_id"])
            received = [w.json() for w in receiver.wait_for(6)]

        assert started["status"] == "started" and started["filters"]["status"] == "failed"
        assert (done["total"], done["sent"], done["succeeded"], done["failed"]) == (6, 6, 6, 0)
        # Re-sent concurrently, so they may arrive in any order.
        by_id = {w["id"]: _without_replay_flag(w) for w in received}
        assert by_id == {r["id"]: r["event"] for r in failed}
        assert control.webhook_history(status="failed")["pagination"]["total"] == 0
        after = control.webhook_history_all(status="success")
        assert {(r["attempts"], r["last_status_code"]) for r in after} == {(5, 200)}

    def test_replaying_nothing_completes(self, emulator: EmulatorHandle) -> None:
        started = emulator.control.replay_webhooks(room_id=_room(emulator))

        done = emulator.control.wait_for_replay(started["workflow_id"])

        assert (done["total"], done["sent"]) == (0, 0)


class TestHistoryOverHttp:
    def test_pages_and_filters(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        emulator.control.set_workspace_webhook(webhook_receiver.url)
        room_id = _room(emulator)
        _short_session(emulator, room_id)
        emulator.control.wait_for_deliveries()

        first = emulator.control.webhook_history(room_id=room_id, limit=4)
        every = emulator.control.webhook_history_all(room_id=room_id)
        joins = emulator.control.webhook_history_all(event_names=["peer.join.success"])

        assert first["pagination"] == {"page": 1, "limit": 4, "total": 6, "total_pages": 2}
        assert every[:4] == first["data"]
        assert [r["event"]["type"] for r in every] == [
            "session.open.success",
            "peer.join.success",
            "peer.join.success",
            "peer.leave.success",
            "peer.leave.success",
            "session.close.success",
        ]
        assert len(joins) == 2
        assert {r["id"] for r in every} == {w.json()["id"] for w in webhook_receiver.received}

    def test_rate_limit_fault(self, emulator: EmulatorHandle) -> None:
        emulator.control.queue_fault(
            "/v2/analytics/webhooks", kind="status", status=429, retry_after=45
        )

        with emulator.api() as api:
            response = api.get(
                "/analytics/webhooks",
                params={"start_time": "2026-01-01T00:00:00Z", "end_time": "2027-01-01T00:00:00Z"},
            )

        assert response.status_code == 429
        assert response.headers["retry-after"] == "45"
        assert response.json()["message"] == "rate limit exceeded, retry after 45 seconds"

    def test_needs_a_management_token(self, emulator: EmulatorHandle) -> None:
        response = httpx.get(f"{emulator.api_url}/analytics/webhooks", timeout=5)

        assert response.status_code == 401
