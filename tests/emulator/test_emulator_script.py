"""Scripted peers (`POST /_emulator/rooms/{id}/script`) and the ground truth computed from them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hms_emulator.ground_truth import per_minute_peak, viewer_steps, watch_time
from hms_emulator.state import Peer, parse_ts
from tests.emulator.conftest import Emu
from tests.support.emulator import join_op, leave_op, rfc3339

T0 = datetime(2026, 11, 21, 11, 58, 30, 600000, tzinfo=UTC)
HOST, A1, BOB, CAROL, A2, DAVE = (str(uuid.uuid4()) for _ in range(6))


def at(hms: str) -> datetime:
    """`"11:59:40.5"` on T0's day."""
    clock = datetime.strptime(hms, "%H:%M:%S.%f" if "." in hms else "%H:%M:%S")
    return T0.replace(hour=clock.hour, minute=clock.minute, second=clock.second).replace(
        microsecond=clock.microsecond
    )


# The hand-computed session: alice leaves as carol joins (same instant), alice re-joins as a new
# peer, bob leaves a microsecond before a minute starts, dave joins exactly on it, and alice's
# second peer leaves exactly as the last minute starts.
EXAMPLE = [
    join_op("host", T0, role="broadcaster", peer_id=HOST),
    join_op("alice", at("11:58:45.25"), peer_id=A1),
    join_op("bob", at("11:59:10"), peer_id=BOB),
    leave_op(A1, at("11:59:40.5")),
    join_op("carol", at("11:59:40.5"), peer_id=CAROL),
    join_op("alice", at("12:00:05.125"), peer_id=A2),
    leave_op(BOB, at("12:00:59.999999")),
    join_op("dave", at("12:01:00"), peer_id=DAVE),
    leave_op(DAVE, at("12:01:30"), reason="websocket closed"),
    leave_op(CAROL, at("12:01:30")),
    leave_op(A2, at("12:02:00")),
    leave_op(HOST, at("12:02:10")),
]


def _raw_join(at_text: str) -> dict[str, Any]:
    return {"op": "join", "user_id": "a", "role": "viewer", "at": at_text}


async def _script(emu: Emu, room_id: str, events: list[dict[str, Any]]) -> httpx.Response:
    return await emu.http.post(f"/_emulator/rooms/{room_id}/script", json={"events": events})


async def _truths(emu: Emu, room_id: str, **params: str) -> httpx.Response:
    return await emu.http.get(f"/_emulator/rooms/{room_id}/ground-truth", params=params)


async def _run_example(emu: Emu) -> tuple[dict[str, Any], dict[str, Any]]:
    room = await emu.room()
    response = await _script(emu, room["id"], EXAMPLE)
    assert response.status_code == 201, response.text
    return room, response.json()


class TestGroundTruth:
    @pytest.mark.asyncio
    async def test_hand_computed_example(self, emu: Emu) -> None:
        room, result = await _run_example(emu)

        (truth,) = (await _truths(emu, room["id"])).json()["data"]

        assert truth["session_id"] == result["session_ids"][0]
        assert truth["started_at"] == "2026-11-21T11:58:30.600000000Z"
        assert truth["ended_at"] == "2026-11-21T12:02:10.000000000Z"
        assert truth["duration_seconds"] == 219  # 219.4 s, rounded down
        assert truth["active"] is False
        assert truth["viewer_role_peers"] == 5
        assert truth["unique_viewers"] == 4  # alice counted once
        assert truth["peak_viewers"] == 3
        # 55.25 + 109.999999 + 109.5 + 114.875 + 30
        assert truth["total_watch_seconds"] == 419.624999
        assert truth["per_minute_peak"] == [
            {"minute": "2026-11-21T11:58:00Z", "viewers": 1},
            {"minute": "2026-11-21T11:59:00Z", "viewers": 2},  # alice → carol: no overlap
            {"minute": "2026-11-21T12:00:00Z", "viewers": 3},
            {"minute": "2026-11-21T12:01:00Z", "viewers": 3},  # dave joins on the boundary
            {"minute": "2026-11-21T12:02:00Z", "viewers": 0},  # alice left on the boundary
        ]

    @pytest.mark.asyncio
    async def test_peers_match_the_webhooks_exactly(self, emu: Emu) -> None:
        room, _ = await _run_example(emu)

        (truth,) = (await _truths(emu, room["id"])).json()["data"]

        left = {e["data"]["peer_id"]: e["data"] for e in emu.events("peer.leave.success")}
        assert [p["peer_id"] for p in truth["peers"]] == [HOST, A1, BOB, CAROL, A2, DAVE]
        for peer in truth["peers"]:
            data = left[peer["peer_id"]]
            assert (peer["user_id"], peer["role"]) == (data["user_id"], data["role"])
            assert (peer["joined_at"], peer["left_at"]) == (data["joined_at"], data["left_at"])
        opened = emu.events("session.open.success")[0]["data"]
        closed = emu.events("session.close.success")[0]["data"]
        assert opened["session_started_at"] == truth["started_at"]
        assert closed["session_stopped_at"] == truth["ended_at"]
        assert closed["session_duration"] == truth["duration_seconds"]

    @pytest.mark.asyncio
    async def test_open_session_counts_up_to_its_last_change(self, emu: Emu) -> None:
        room = await emu.room()
        await _script(emu, room["id"], EXAMPLE[:3])

        (truth,) = (await _truths(emu, room["id"])).json()["data"]

        assert truth["active"] is True
        assert (truth["ended_at"], truth["duration_seconds"]) == (None, None)
        assert truth["as_of"] == "2026-11-21T11:59:10.000000000Z"
        assert truth["peak_viewers"] == 2
        assert truth["total_watch_seconds"] == 24.75  # alice until bob's join
        assert {p["left_at"] for p in truth["peers"]} == {None}

    @pytest.mark.asyncio
    async def test_session_filter(self, emu: Emu) -> None:
        room, result = await _run_example(emu)
        later = [join_op("zoe", at("12:10:00"), peer_id=str(uuid.uuid4()))]
        second = (await _script(emu, room["id"], later)).json()["session_ids"][0]

        both = (await _truths(emu, room["id"])).json()["data"]
        one = (await _truths(emu, room["id"], session_id=second)).json()["data"]
        missing = await _truths(emu, room["id"], session_id="0" * 24)

        assert [t["session_id"] for t in both] == [result["session_ids"][0], second]
        assert [t["session_id"] for t in one] == [second]
        assert missing.status_code == 404

    def test_overlapping_peers_of_one_user_are_one_viewer(self) -> None:
        later = T0 + timedelta(seconds=30)
        peers = [
            Peer("p1", "s", "r", "u1", "u1", "viewer", "", T0, T0 + timedelta(seconds=20)),
            Peer("p2", "s", "r", "u1", "u1", "viewer", "", T0 + timedelta(seconds=10), later),
            Peer("p3", "s", "r", "u1", "u1", "viewer", "", later, None),
        ]

        assert viewer_steps(peers) == [(T0, 1)]
        assert watch_time(peers, later + timedelta(seconds=5)) == timedelta(seconds=35)

    def test_zero_length_peer_covers_no_instant(self) -> None:
        moment = T0 + timedelta(seconds=10)
        peers = [
            Peer("p1", "s", "r", "u1", "u1", "viewer", "", moment, moment),
            Peer("p2", "s", "r", "u2", "u2", "viewer", "", T0, moment),
        ]

        steps = viewer_steps(peers)

        assert steps == [(T0, 1), (moment, 0)]
        assert per_minute_peak(steps, T0, moment) == [(T0.replace(second=0, microsecond=0), 1)]


class TestScript:
    @pytest.mark.asyncio
    async def test_same_webhooks_as_single_peer_endpoints(self, emu: Emu) -> None:
        _, result = await _run_example(emu)

        assert emu.types() == [
            "session.open.success",
            *["peer.join.success"] * 3,
            "peer.leave.success",
            *["peer.join.success"] * 2,
            "peer.leave.success",
            "peer.join.success",
            *["peer.leave.success"] * 4,
            "session.close.success",
        ]
        assert result["events_emitted"] == 14
        assert result["peer_ids"] == [HOST, A1, BOB, CAROL, A2, DAVE]
        reasons = [e["data"]["reason"] for e in emu.events("peer.leave.success")]
        assert reasons[2] == "websocket closed" and reasons[0] == "client request"

    @pytest.mark.asyncio
    async def test_times_are_stamped_from_the_script(self, emu: Emu) -> None:
        await _run_example(emu)

        joined = emu.events("peer.join.success")[1]
        closed = emu.events("session.close.success")[0]

        assert joined["timestamp"] == "2026-11-21T11:58:45Z"
        assert joined["data"]["joined_at"] == "2026-11-21T11:58:45.250000000Z"
        assert closed["timestamp"] == "2026-11-21T12:02:10Z"
        assert parse_ts(joined["data"]["joined_at"]) == at("11:58:45.25")

    @pytest.mark.asyncio
    async def test_sessions_api_agrees(self, emu: Emu) -> None:
        _, result = await _run_example(emu)

        session = (await emu.api("GET", f"/sessions/{result['session_ids'][0]}")).json()

        assert session["active"] is False
        assert session["peers"][BOB]["left_at"] == "2026-11-21T12:00:59.999999000Z"

    @pytest.mark.asyncio
    async def test_generated_peer_ids_and_a_second_session(self, emu: Emu) -> None:
        room = await emu.room()
        first = (await _script(emu, room["id"], [join_op("solo", T0)])).json()
        (solo,) = first["peer_ids"]

        second = await _script(
            emu,
            room["id"],
            [leave_op(solo, T0 + timedelta(seconds=5)), join_op("next", at("12:30:00"))],
        )

        assert uuid.UUID(solo).version == 4
        assert second.status_code == 201
        assert len(second.json()["session_ids"]) == 2
        assert emu.types().count("session.close.success") == 1

    @pytest.mark.parametrize(
        ("events", "detail"),
        [
            ([join_op("a", T0), join_op("b", T0 - timedelta(microseconds=1))], "back in time"),
            ([leave_op(str(uuid.uuid4()), T0)], "peer not joined"),
            ([join_op("a", T0, peer_id=HOST), join_op("b", T0, peer_id=HOST)], "duplicate"),
            ([join_op("a", T0, role="Viewer")], "role not allowed"),
            (
                [join_op("a", T0, role="broadcaster"), join_op("b", T0, role="broadcaster")],
                "role limit reached",
            ),
            ([_raw_join("2026-11-21T12:00:00")], ".at"),  # no zone
            ([_raw_join("2026-11-21T12:00:00.1234567Z")], ".at"),  # finer than 1 µs
            ([{"op": "wave", "at": rfc3339(T0)}], "op"),
            ([join_op("a", T0, peer_id="not-a-uuid")], "peer_id"),
        ],
    )
    @pytest.mark.asyncio
    async def test_a_bad_script_changes_nothing(
        self, emu: Emu, events: list[dict[str, Any]], detail: str
    ) -> None:
        room = await emu.room()

        response = await _script(emu, room["id"], [join_op("ok", T0 - timedelta(hours=1)), *events])

        assert response.status_code == 400, response.text
        assert detail in response.json()["details"][0]
        assert emu.events() == []
        assert emu.runtime.state.sessions == {}

    @pytest.mark.parametrize("body", [{}, {"events": []}, {"events": "join"}])
    @pytest.mark.asyncio
    async def test_needs_events(self, emu: Emu, body: dict[str, Any]) -> None:
        room = await emu.room()

        response = await emu.http.post(f"/_emulator/rooms/{room['id']}/script", json=body)

        assert response.status_code == 400

    @pytest.mark.asyncio
    async def test_cannot_go_before_the_open_session(self, emu: Emu) -> None:
        room = await emu.room()
        await _script(emu, room["id"], [join_op("a", T0)])

        response = await _script(emu, room["id"], [join_op("b", T0 - timedelta(seconds=1))])

        assert response.status_code == 400
        assert "back in time" in response.json()["details"][0]

    @pytest.mark.asyncio
    async def test_nanosecond_zeros_are_accepted(self, emu: Emu) -> None:
        room = await emu.room()
        response = await _script(emu, room["id"], [_raw_join("2026-11-21T12:00:00.123456000Z")])

        assert response.status_code == 201
        assert emu.events("peer.join.success")[0]["data"]["joined_at"] == (
            "2026-11-21T12:00:00.123456000Z"
        )

    @pytest.mark.asyncio
    async def test_disabled_room(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.api("POST", f"/rooms/{room['id']}", json={"enabled": False})

        response = await _script(emu, room["id"], [join_op("a", T0)])

        assert response.status_code == 403

    @pytest.mark.asyncio
    async def test_unknown_room(self, emu: Emu) -> None:
        response = await _script(emu, "0" * 24, [join_op("a", T0)])

        assert response.status_code == 404


class TestScale:
    @pytest.mark.asyncio
    async def test_hundreds_of_peers_in_one_call(self, emu: Emu) -> None:
        room = await emu.room()
        ids = [str(uuid.uuid4()) for _ in range(600)]
        ops = [join_op("host", T0, role="broadcaster", peer_id=HOST)]
        ops += [
            join_op(f"u{i % 450}", T0 + timedelta(seconds=i), peer_id=pid)
            for i, pid in enumerate(ids)
        ]
        ops += [leave_op(pid, T0 + timedelta(seconds=600 + i)) for i, pid in enumerate(ids)]
        ops.append(leave_op(HOST, T0 + timedelta(seconds=1300)))

        started = time.monotonic()
        response = await _script(emu, room["id"], ops)
        elapsed = time.monotonic() - started
        (truth,) = (await _truths(emu, room["id"])).json()["data"]

        assert response.status_code == 201
        assert elapsed < 3
        # u0…u149 have two overlapping peers each: one viewer connected over both.
        assert (truth["peak_viewers"], truth["unique_viewers"]) == (450, 450)
        assert truth["viewer_role_peers"] == 600
        assert truth["total_watch_seconds"] == 150 * 1050.0 + 300 * 600.0
        assert truth["duration_seconds"] == 1300
        assert len(truth["per_minute_peak"]) == 23  # 11:58 … 12:20
