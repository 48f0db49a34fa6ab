"""`/v2/analytics/webhooks`: delivery history, filters, pagination, auth, and replay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hms_emulator.state import EventDelivery
from tests.emulator.conftest import Emu, WebhookSink
from tests.support.emulator import join_op, leave_op, rfc3339

WORKSPACE_URL = "http://127.0.0.1:9/hooks"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALL = {"start_time": "2026-11-21T00:00:00Z", "end_time": "2026-11-22T00:00:00Z"}


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def emu_overrides() -> dict[str, Any]:
    return {"webhook_url": WORKSPACE_URL}


async def _scripted_rooms(emu: Emu) -> tuple[str, str]:
    """8 events: room one (6) from T0 to T0+3 s, room two (2) at T0+1.5 s, interleaved in time."""
    one, two = (await emu.room("one"))["id"], (await emu.room("two"))["id"]
    host, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    script_one = [
        join_op("host", T0, role="broadcaster", peer_id=host),
        join_op("v1", later(1), peer_id=viewer),
        leave_op(viewer, later(2)),
        leave_op(host, later(3)),
    ]
    for room_id, events in ((one, script_one), (two, [join_op("v2", later(1.5))])):
        response = await emu.http.post(
            f"/_emulator/rooms/{room_id}/script", json={"events": events}
        )
        assert response.status_code == 201, response.text
    await emu.drain()
    return one, two


async def _history(emu: Emu, **params: Any) -> httpx.Response:
    return await emu.api("GET", "/analytics/webhooks", params={**ALL, **params})


async def _rows(emu: Emu, **params: Any) -> list[dict[str, Any]]:
    response = await _history(emu, **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def _types(rows: list[dict[str, Any]]) -> list[str]:
    return [r["event"]["type"] for r in rows]


class TestHistory:
    @pytest.mark.asyncio
    async def test_rows_in_event_time_order(self, emu: Emu) -> None:
        one, two = await _scripted_rooms(emu)

        rows = await _rows(emu)

        assert [(r["room_id"], r["event_name"]) for r in rows] == [
            (one, "session.open.success"),
            (one, "peer.join.success"),
            (one, "peer.join.success"),
            (two, "session.open.success"),
            (two, "peer.join.success"),
            (one, "peer.leave.success"),
            (one, "peer.leave.success"),
            (one, "session.close.success"),
        ]
        envelopes = {e["id"]: e for e in emu.events()}
        for row in rows:
            assert row["event"] == envelopes[row["id"]]
            assert (row["status"], row["attempts"], row["last_status_code"]) == ("success", 1, 200)
        assert rows[3]["created_at"] == "2026-11-21T12:00:01.500000000Z"

    @pytest.mark.asyncio
    async def test_pagination(self, emu: Emu) -> None:
        await _scripted_rooms(emu)
        everything = await _rows(emu)

        pages = [(await _history(emu, limit=3, page=p)).json() for p in (1, 2, 3, 4)]

        assert [p["pagination"] for p in pages] == [
            {"page": n, "limit": 3, "total": 8, "total_pages": 3} for n in (1, 2, 3, 4)
        ]
        assert [len(p["data"]) for p in pages] == [3, 3, 2, 0]
        assert [r for p in pages for r in p["data"]] == everything
        default = (await _history(emu)).json()["pagination"]
        assert (default["limit"], default["page"]) == (50, 1)

    @pytest.mark.asyncio
    async def test_filters(self, emu: Emu) -> None:
        one, two = await _scripted_rooms(emu)

        by_room = await _rows(emu, room_id=two)
        by_names = await _rows(emu, event_names="peer.join.success, session.open.success")
        repeated = await _rows(
            emu, event_names=["peer.leave.success", "session.close.success"], room_id=one
        )
        window = await _rows(emu, start_time=rfc3339(later(1)), end_time=rfc3339(later(2)))

        assert _types(by_room) == ["session.open.success", "peer.join.success"]
        assert len(by_names) == 5 and "peer.leave.success" not in _types(by_names)
        assert _types(repeated) == ["peer.leave.success"] * 2 + ["session.close.success"]
        assert _types(window) == [
            "peer.join.success",
            "session.open.success",
            "peer.join.success",
            "peer.leave.success",
        ]

    @pytest.mark.asyncio
    async def test_status(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        webhook_sink.answer("peer.leave.success", *[500] * 8)
        await _scripted_rooms(emu)

        failed = await _rows(emu, status="failed")
        success = await _rows(emu, status="success")

        assert _types(failed) == ["peer.leave.success"] * 2
        assert {(r["status"], r["attempts"], r["last_status_code"]) for r in failed} == {
            ("failed", 4, 500)
        }
        assert len(success) == 6 and {r["status"] for r in success} == {"success"}

    def test_pending_while_a_delivery_is_under_way(self) -> None:
        record = EventDelivery({"id": "e", "type": "t"}, "r", T0, in_flight=1)

        assert record.status == "pending"
        record.in_flight = 0
        assert record.status == "failed"
        record.delivered = True
        assert record.status == "success"

    @pytest.mark.parametrize(
        ("params", "bad"),
        [
            ({"start_time": None}, "start_time"),
            ({"end_time": "yesterday"}, "end_time"),
            ({"end_time": "2026-11-20T00:00:00Z"}, "end_time"),
            ({"status": "pending"}, "status"),
            ({"limit": 0}, "limit"),
            ({"limit": 101}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"page": 0}, "page"),
        ],
    )
    @pytest.mark.asyncio
    async def test_bad_query(self, emu: Emu, params: dict[str, Any], bad: str) -> None:
        query = {k: v for k, v in {**ALL, **params}.items() if v is not None}

        response = await emu.api("GET", "/analytics/webhooks", params=query)

        assert response.status_code == 400
        assert response.json() == {
            "code": 400,
            "message": "Invalid query parameter",
            "details": [bad],
        }

    @pytest.mark.parametrize("path", ["/analytics/webhooks", "/analytics/webhooks/replay/x"])
    @pytest.mark.asyncio
    async def test_needs_a_management_token(self, emu: Emu, path: str) -> None:
        missing = await emu.http.get(f"/v2{path}", params=ALL)
        forged = await emu.http.get(
            f"/v2{path}",
            params=ALL,
            headers={"Authorization": f"Bearer {emu.token(secret='x' * 32)}"},
        )

        assert missing.status_code == forged.status_code == 401
        assert forged.json()["message"] == "Token validation error"

    @pytest.mark.asyncio
    async def test_rate_limit_comes_from_faults(self, emu: Emu) -> None:
        fault = {"kind": "status", "status": 429, "retry_after": 45, "path_prefix": "/v2/analytics"}
        await emu.http.post("/_emulator/faults", json=fault)

        limited = await _history(emu)
        after = await _history(emu)

        assert limited.status_code == 429
        assert limited.json()["message"] == "rate limit exceeded, retry after 45 seconds"
        assert limited.headers["retry-after"] == "45"
        assert after.status_code == 200


class TestNoTarget:
    @pytest.fixture
    def emu_overrides(self) -> dict[str, Any]:
        return {}

    @pytest.mark.asyncio
    async def test_events_without_a_target_are_not_listed(self, emu: Emu) -> None:
        await _scripted_rooms(emu)

        assert len(emu.events()) == 8
        assert await _rows(emu) == []


async def _replay(emu: Emu, **body: Any) -> httpx.Response:
    return await emu.api("POST", "/analytics/webhooks/replay", json={**ALL, **body})


async def _replay_status(emu: Emu, workflow_id: str) -> dict[str, Any]:
    response = await emu.api("GET", f"/analytics/webhooks/replay/{workflow_id}")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def _bodies(sink: WebhookSink) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in sink.received]


class TestReplay:
    @pytest.mark.asyncio
    async def test_failed_events_are_resent_marked_as_replays(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        webhook_sink.answer("peer.leave.success", *[500] * 8)
        await _scripted_rooms(emu)
        failed = await _rows(emu, status="failed")
        sent_before = len(webhook_sink.received)

        response = await _replay(emu)
        await emu.drain()

        started = response.json()
        assert response.status_code == 200
        assert started["status"] == "started" and uuid.UUID(started["workflow_id"])
        assert started["filters"] == {
            **ALL,
            "room_id": None,
            "event_names": [],
            "status": "failed",
            "limit": 50000,
            "offset": 0,
        }
        replayed = _bodies(webhook_sink)[sent_before:]
        assert [b["id"] for b in replayed] == [r["id"] for r in failed]
        for body, row in zip(replayed, failed, strict=True):
            assert body.pop("is_replay") is True
            assert body == row["event"]
        status = await _replay_status(emu, started["workflow_id"])
        assert (status["status"], status["total"], status["sent"]) == ("completed", 2, 2)
        assert (status["succeeded"], status["failed"], status["skipped"]) == (2, 0, 0)
        now = {r["id"]: r for r in await _rows(emu)}
        assert {(now[r["id"]]["status"], now[r["id"]]["attempts"]) for r in failed} == {
            ("success", 5)
        }
        assert await _rows(emu, status="failed") == []

    @pytest.mark.asyncio
    async def test_attempts_are_logged_as_replays(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        await _scripted_rooms(emu)

        await _replay(emu, status="all", event_names=["session.close.success"])
        await emu.drain()

        attempts = (await emu.http.get("/_emulator/webhooks")).json()["data"]
        assert [a["type"] for a in attempts if a["replay"]] == ["session.close.success"]
        assert json.loads(webhook_sink.received[-1].content)["is_replay"] is True

    @pytest.mark.asyncio
    async def test_filters_limit_and_offset(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        one, _ = await _scripted_rooms(emu)
        sent_before = len(webhook_sink.received)

        response = await _replay(emu, status="all", room_id=one, limit=2, offset=1)
        await emu.drain()

        replayed = _bodies(webhook_sink)[sent_before:]
        assert [b["type"] for b in replayed] == ["peer.join.success"] * 2
        assert response.json()["filters"]["room_id"] == one

    @pytest.mark.asyncio
    async def test_replay_that_fails_again(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        webhook_sink.answer("session.close.success", *[500] * 8)
        await _scripted_rooms(emu)

        workflow_id = (await _replay(emu)).json()["workflow_id"]
        await emu.drain()

        status = await _replay_status(emu, workflow_id)
        assert (status["succeeded"], status["failed"]) == (0, 1)
        (row,) = await _rows(emu, status="failed")
        assert row["attempts"] == 8

    @pytest.mark.parametrize(
        "body",
        [
            {"start_time": None},
            {"status": "pending"},
            {"limit": 0},
            {"limit": 50001},
            {"offset": -1},
            {"event_names": [1]},
            {"room_id": 7},
        ],
    )
    @pytest.mark.asyncio
    async def test_bad_body(self, emu: Emu, body: dict[str, Any]) -> None:
        payload = {k: v for k, v in {**ALL, **body}.items() if v is not None}

        response = await emu.api("POST", "/analytics/webhooks/replay", json=payload)

        assert response.status_code == 400
        assert response.json()["message"] == "Invalid body param"

    @pytest.mark.asyncio
    async def test_unknown_workflow(self, emu: Emu) -> None:
        response = await emu.api("GET", f"/analytics/webhooks/replay/{uuid.uuid4()}")

        assert response.status_code == 404


class TestReplayRate:
    @pytest.fixture
    def emu_overrides(self) -> dict[str, Any]:
        return {"webhook_url": WORKSPACE_URL, "replay_events_per_second": 20.0}

    @pytest.mark.asyncio
    async def test_same_filters_while_running(self, emu: Emu) -> None:
        await _scripted_rooms(emu)

        first = (await _replay(emu, status="all")).json()
        second = (await _replay(emu, status="all")).json()
        other = (await _replay(emu, status="success")).json()
        running = await _replay_status(emu, first["workflow_id"])
        await emu.drain()

        assert (first["status"], second["status"]) == ("started", "already_running")
        assert second["workflow_id"] == first["workflow_id"]
        assert other["workflow_id"] != first["workflow_id"] and other["status"] == "started"
        assert running["status"] == "started" and running["sent"] < 8
        done = await _replay_status(emu, first["workflow_id"])
        assert (done["status"], done["sent"], done["succeeded"]) == ("completed", 8, 8)
        assert done["completed_at"] is not None
