"""What 100ms's own server SDK (@100mslive/server-sdk 0.3.0) expects and the emulator lacked
(issue 14): updating a peer, timed metadata, pausing and resuming a live stream's recording,
the templates' `customer` and `appId`, HLS stop reasons and timing, `left_at` on every session
peer, and back-dated room-code tokens (tests/emulator/test_emulator_room_codes.py). The SDK
itself drives them in tests/contract/test_hms_server_sdk.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hms_emulator import EmulatorConfig
from hms_emulator.state import ZERO_TIME
from tests.emulator.conftest import Emu

pytestmark = pytest.mark.asyncio


async def _live_peer(emu: Emu, role: str = "viewer", **body: Any) -> tuple[str, dict[str, Any]]:
    room = await emu.room()
    joined = await emu.join(room["id"], role, **body)
    assert joined.status_code == 201, joined.text
    return room["id"], joined.json()


async def _running_stream(emu: Emu, **body: Any) -> tuple[str, dict[str, Any]]:
    room = await emu.room()
    await emu.join(room["id"], "broadcaster")
    started = await emu.api("POST", f"/live-streams/room/{room['id']}/start", json=body or {})
    assert started.status_code == 200, started.text
    await emu.drain()
    return room["id"], started.json()


class TestUpdatePeer:
    async def test_name_metadata_and_role_change(self, emu: Emu) -> None:
        room_id, peer = await _live_peer(emu, name="Dee")
        path = f"/active-rooms/{room_id}/peers/{peer['id']}"

        response = await emu.api(
            "POST", path, json={"name": "Dee D.", "metadata": '{"seat":1}', "role": "broadcaster"}
        )

        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["id"], updated["name"], updated["metadata"], updated["role"]) == (
            peer["id"],
            "Dee D.",
            '{"seat":1}',
            "broadcaster",
        )
        assert "tracks" in updated
        assert (await emu.api("GET", path)).json()["role"] == "broadcaster"
        (change,) = emu.events("role.change.success")
        assert (change["data"]["previous_role"], change["data"]["role"]) == (
            "viewer",
            "broadcaster",
        )
        assert change["data"]["peer_id"] == peer["id"]
        assert "role_change_requested_by" not in change["data"], "an API change has no requester"

    async def test_metadata_alone_changes_no_role(self, emu: Emu) -> None:
        room_id, peer = await _live_peer(emu)

        response = await emu.api(
            "POST", f"/active-rooms/{room_id}/peers/{peer['id']}", json={"metadata": "m"}
        )

        assert (response.status_code, response.json()["role"]) == (200, "viewer")
        assert emu.events("role.change.success") == []

    async def test_refusals(self, emu: Emu) -> None:
        room_id, peer = await _live_peer(emu)
        path = f"/active-rooms/{room_id}/peers/{peer['id']}"
        await emu.join(room_id, "broadcaster")  # the template allows one broadcaster

        empty = await emu.api("POST", path)
        nothing = await emu.api("POST", path, json={})
        unknown_role = await emu.api("POST", path, json={"role": "director"})
        full = await emu.api("POST", path, json={"role": "broadcaster"})
        unknown_peer = await emu.api(
            "POST",
            f"/active-rooms/{room_id}/peers/{'0' * 8}-0000-4000-8000-{'0' * 12}",
            json={"name": "x"},
        )

        assert (empty.status_code, empty.json()["message"]) == (
            400,
            "request body must not be empty",
        )
        assert nothing.status_code == unknown_role.status_code == 400
        assert (full.status_code, full.json()["message"]) == (400, "role limit reached")
        assert emu.events("role.change.failure")[0]["data"]["error_message"] == "role limit reached"
        assert unknown_peer.status_code == 404
        assert emu.runtime.state.active_session(room_id).peers[peer["id"]].role == "viewer"


class TestTimedMetadata:
    async def test_added_to_a_running_stream_and_its_playlist(self, emu: Emu) -> None:
        _, stream = await _running_stream(emu)

        response = await emu.api(
            "POST",
            f"/live-streams/{stream['id']}/timed-metadata",
            json={"payload": "poll:42", "duration": 10},
        )

        assert response.status_code == 200, response.text
        assert response.json()["id"] == stream["id"]
        playlist = (await emu.http.get(stream["playback"]["url"])).text
        assert 'DURATION=10,X-100MSLIVE-PAYLOAD="poll:42"' in playlist
        assert playlist.startswith("#EXTM3U")

    @pytest.mark.parametrize(
        "body", [{"payload": "x" * 101, "duration": 5}, {"payload": "p"}, {"duration": 5}]
    )
    async def test_bad_bodies(self, emu: Emu, body: dict[str, Any]) -> None:
        _, stream = await _running_stream(emu)

        response = await emu.api("POST", f"/live-streams/{stream['id']}/timed-metadata", json=body)

        assert (response.status_code, response.json()["message"]) == (400, "Invalid body param")

    async def test_a_stopped_stream_takes_none(self, emu: Emu) -> None:
        room_id, stream = await _running_stream(emu)
        await emu.api("POST", f"/live-streams/room/{room_id}/stop")
        await emu.drain()

        response = await emu.api(
            "POST",
            f"/live-streams/{stream['id']}/timed-metadata",
            json={"payload": "p", "duration": 1},
        )

        assert (response.status_code, response.json()["message"]) == (404, "beam not found")


class TestRecordingPause:
    async def test_pause_then_resume(self, emu: Emu) -> None:
        _, stream = await _running_stream(emu, recording={"hls_vod": True})
        held = emu.runtime.state.live_streams[stream["id"]]

        paused = await emu.api("POST", f"/live-streams/{stream['id']}/pause-recording")
        assert (paused.status_code, held.recording_paused) == (200, True)
        resumed = await emu.api("POST", f"/live-streams/{stream['id']}/resume-recording")
        assert (resumed.status_code, held.recording_paused) == (200, False)
        assert resumed.json()["status"] == "running"

    async def test_without_recording_or_stream(self, emu: Emu) -> None:
        _, stream = await _running_stream(emu)

        unrecorded = await emu.api("POST", f"/live-streams/{stream['id']}/pause-recording")
        unknown = await emu.api("POST", f"/live-streams/{'0' * 24}/resume-recording")

        assert unrecorded.status_code == 400
        assert (unknown.status_code, unknown.json()["message"]) == (404, "beam not found")


async def test_templates_carry_customer_and_app_id(emu: Emu) -> None:
    made = (await emu.api("POST", "/templates", json={"name": "api-made"})).json()
    listed = (await emu.api("GET", "/templates")).json()["data"]

    for template in (made, *listed):
        assert template["customer"] == template["customerId"] == emu.config.customer_id
        assert template["appId"] == emu.config.app_id


async def test_session_peers_all_carry_left_at(emu: Emu) -> None:
    room_id, staying = await _live_peer(emu)
    leaving = (await emu.join(room_id)).json()
    await emu.http.delete(f"/_emulator/rooms/{room_id}/peers/{leaving['id']}")

    session = (await emu.api("GET", f"/sessions/{staying['session_id']}")).json()

    assert session["peers"][staying["id"]]["left_at"] == ZERO_TIME
    assert session["peers"][leaving["id"]]["left_at"].endswith("Z")
    assert session["peers"][leaving["id"]]["left_at"] != ZERO_TIME


async def test_an_empty_room_s_stream_stops_five_minutes_later_by_default() -> None:
    assert EmulatorConfig(access_key="k", app_secret="s").hls_idle_stop_seconds == 300


class TestIdleStop:
    IDLE = 0.3

    @pytest.fixture
    def emu_overrides(self) -> dict[str, Any]:
        return {"hls_idle_stop_seconds": self.IDLE}

    async def _leave_all(self, emu: Emu, room_id: str) -> None:
        session = emu.runtime.state.active_session(room_id)
        assert session is not None
        for peer in session.connected_peers():
            await emu.http.delete(f"/_emulator/rooms/{room_id}/peers/{peer.id}")

    async def _status(self, emu: Emu, stream: dict[str, Any]) -> str:
        status: str = (await emu.api("GET", f"/live-streams/{stream['id']}")).json()["status"]
        return status

    async def test_stops_after_the_wait_with_last_peer_left(self, emu: Emu) -> None:
        room_id, stream = await _running_stream(emu)

        await self._leave_all(emu, room_id)
        assert await self._status(emu, stream) == "running", "not the moment the room empties"
        await emu.drain()

        assert await self._status(emu, stream) == "completed"
        (stopped,) = emu.events("hls.stopped.success")
        assert stopped["data"]["reason"] == "last peer left"

    async def test_a_peer_back_within_the_wait_keeps_it_running(self, emu: Emu) -> None:
        room_id, stream = await _running_stream(emu)

        await self._leave_all(emu, room_id)
        await emu.join(room_id, "broadcaster")
        await asyncio.sleep(self.IDLE * 2)

        assert await self._status(emu, stream) == "running"
        assert emu.events("hls.stopped.success") == []
