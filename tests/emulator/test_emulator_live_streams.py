from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import Emu


async def _start(emu: Emu, room_id: str, body: Any = None) -> Any:
    return await emu.api("POST", f"/live-streams/room/{room_id}/start", json=body or {})


class TestStart:
    @pytest.mark.asyncio
    async def test_starting_then_running(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.join(room["id"], "broadcaster")

        response = await _start(emu, room["id"])
        await emu.drain()

        stream = response.json()
        assert response.status_code == 200
        assert stream["status"] == "starting"
        assert stream["playback"]["url"].endswith(".m3u8")
        assert stream["started_by"] == "" and stream["started_at"] is None
        assert stream["session_id"] == emu.events("session.open.success")[0]["data"]["session_id"]
        fetched = (await emu.api("GET", f"/live-streams/{stream['id']}")).json()
        assert fetched["status"] == "running" and fetched["started_at"].endswith("Z")
        started = emu.events("hls.started.success")[0]["data"]
        assert (started["url"], started["state_name"]) == (stream["playback"]["url"], "HLSStarted")

    @pytest.mark.asyncio
    async def test_second_start_conflicts(self, emu: Emu) -> None:
        room = await emu.room()
        await _start(emu, room["id"])

        again = await _start(emu, room["id"])

        assert again.status_code == 409
        assert again.json() == {"code": 409, "message": "beam already started"}

    @pytest.mark.asyncio
    async def test_empty_body_is_refused(self, emu: Emu) -> None:
        room = await emu.room()

        response = await emu.api("POST", f"/live-streams/room/{room['id']}/start")

        assert (response.status_code, response.json()["message"]) == (
            400,
            "request body must not be empty",
        )

    @pytest.mark.asyncio
    async def test_rest_template_needs_a_meeting_url(self, emu: Emu) -> None:
        template = (await emu.api("POST", "/templates", json={"name": "api-made"})).json()
        room = await emu.room("r", template_id=template["id"])

        refused = await _start(emu, room["id"])
        accepted = await _start(emu, room["id"], {"meeting_url": "https://example.test/m"})

        assert (refused.status_code, refused.json()["message"]) == (400, "invalid input")
        assert accepted.status_code == 200

    @pytest.mark.parametrize(
        "meeting_url", ["", "not a url", "ftp://example.test/m", "https://", "/watch/alice", 7]
    )
    @pytest.mark.asyncio
    async def test_a_malformed_meeting_url_is_invalid_input(
        self, emu: Emu, meeting_url: Any
    ) -> None:
        room = await emu.room()

        refused = await _start(emu, room["id"], {"meeting_url": meeting_url})

        assert refused.status_code == 400
        assert not emu.runtime.state.live_streams

    @pytest.mark.asyncio
    async def test_a_well_formed_meeting_url_is_kept(self, emu: Emu) -> None:
        room = await emu.room()
        url = "http://127.0.0.1:8000/watch/alice"

        stream = (await _start(emu, room["id"], {"meeting_url": url})).json()
        await emu.drain()

        assert stream["meeting_url"] == url
        assert emu.events("hls.started.success")[0]["data"]["meeting_url"] == url

    @pytest.mark.asyncio
    async def test_unknown_room(self, emu: Emu) -> None:
        assert (await _start(emu, "0" * 24)).status_code == 403

    @pytest.mark.asyncio
    async def test_playlist_is_served(self, emu: Emu) -> None:
        room = await emu.room()
        url = (await _start(emu, room["id"])).json()["playback"]["url"]

        playlist = await emu.http.get(url)

        assert playlist.status_code == 200
        assert playlist.text.startswith("#EXTM3U")


class TestStop:
    @pytest.mark.asyncio
    async def test_stop_room_streams(self, emu: Emu) -> None:
        room = await emu.room()
        stream = (await _start(emu, room["id"])).json()
        await emu.drain()

        response = await emu.api("POST", f"/live-streams/room/{room['id']}/stop")
        await emu.drain()

        body = response.json()
        assert set(body) == {"data", "limit", "last"}
        assert [(s["id"], s["status"]) for s in body["data"]] == [(stream["id"], "stopping")]
        assert (await emu.api("GET", f"/live-streams/{stream['id']}")).json()["status"] == (
            "completed"
        )
        stopped = emu.events("hls.stopped.success")[0]["data"]
        assert stopped["reason"] == "client request" and "duration" in stopped

    @pytest.mark.asyncio
    async def test_nothing_to_stop(self, emu: Emu) -> None:
        room = await emu.room()

        response = await emu.api("POST", f"/live-streams/room/{room['id']}/stop")

        assert (response.status_code, response.json()["message"]) == (404, "beam not found")

    @pytest.mark.asyncio
    async def test_stop_one_then_start_again(self, emu: Emu) -> None:
        room = await emu.room()
        stream = (await _start(emu, room["id"])).json()

        stopped = await emu.api("POST", f"/live-streams/{stream['id']}/stop")
        await emu.drain()
        restarted = await _start(emu, room["id"])

        assert stopped.json()["status"] == "stopping"
        assert restarted.status_code == 200
        assert emu.events("hls.started.success") == []

    @pytest.mark.asyncio
    async def test_ending_the_room_stops_hls(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.join(room["id"], "broadcaster")
        await _start(emu, room["id"])
        await emu.drain()

        await emu.api("POST", f"/active-rooms/{room['id']}/end-room", json={})
        await emu.drain()

        # 100ms documents `client request` here: the end-room call is the client's request.
        assert emu.events("hls.stopped.success")[0]["data"]["reason"] == "client request"


class TestList:
    @pytest.mark.asyncio
    async def test_filters(self, emu: Emu) -> None:
        a, b = await emu.room("a"), await emu.room("b")
        first = (await _start(emu, a["id"])).json()
        second = (await _start(emu, b["id"])).json()
        await emu.drain()

        everything = (await emu.api("GET", "/live-streams")).json()["data"]
        of_a = (await emu.api("GET", "/live-streams", params={"room_id": a["id"]})).json()["data"]
        starting = (await emu.api("GET", "/live-streams", params={"status": "starting"})).json()

        assert [s["id"] for s in everything] == [second["id"], first["id"]]
        assert [s["id"] for s in of_a] == [first["id"]]
        assert starting["data"] == []

    @pytest.mark.asyncio
    async def test_unknown_stream(self, emu: Emu) -> None:
        assert (await emu.api("GET", f"/live-streams/{'0' * 24}")).status_code == 404
