from __future__ import annotations

import re
import uuid
from typing import Any

import jwt
import pytest

from tests.emulator.conftest import Emu
from tests.support.fixtures import FakeClock

ROOM_KEYS = {"room_id", "room_name", "session_id", "template_id"}
PEER_KEYS = ROOM_KEYS | {
    "peer_id",
    "user_id",
    "user_name",
    "user_data",
    "role",
    "joined_at",
    "session_started_at",
    "type",
}


def _is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4


async def _live_room(
    emu: Emu, *roles: str, name: str = "stage"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    room = await emu.room(name)
    peers = []
    for i, role in enumerate(roles):
        response = await emu.join(room["id"], role, user_id=f"user-{i}")
        assert response.status_code == 201, response.text
        peers.append(response.json())
    return room, peers


class TestJoin:
    @pytest.mark.asyncio
    async def test_first_peer_opens_the_session(self, emu: Emu) -> None:
        room, (peer,) = await _live_room(emu, "broadcaster")

        opened, joined = emu.events()
        assert (opened["type"], joined["type"]) == ("session.open.success", "peer.join.success")
        assert set(opened["data"]) == ROOM_KEYS | {"session_started_at"}
        assert set(joined["data"]) == PEER_KEYS
        assert joined["data"]["peer_id"] == peer["id"] and _is_uuid4(peer["id"])
        assert joined["data"]["session_id"] == opened["data"]["session_id"] == peer["session_id"]
        assert joined["data"]["type"] == "regular"

    @pytest.mark.asyncio
    async def test_second_peer_joins_the_same_session(self, emu: Emu) -> None:
        _, (a, b) = await _live_room(emu, "broadcaster", "viewer")

        assert a["session_id"] == b["session_id"]
        assert emu.types().count("session.open.success") == 1

    @pytest.mark.asyncio
    async def test_role_cap(self, emu: Emu) -> None:
        room, _ = await _live_room(emu, "broadcaster")

        response = await emu.join(room["id"], "broadcaster", user_id="intruder")

        failure = emu.events("peer.join.failure")[0]["data"]
        assert response.status_code == 409
        assert failure["error_message"] == "role not allowed"
        assert failure["joined_at"] == "0001-01-01T00:00:00Z"
        assert failure["user_id"] == "intruder"
        assert "session_id" not in failure

    @pytest.mark.asyncio
    async def test_unknown_role(self, emu: Emu) -> None:
        room = await emu.room()

        response = await emu.join(room["id"], "Broadcaster")

        assert response.status_code == 403
        assert emu.types() == ["peer.join.failure"]

    @pytest.mark.asyncio
    async def test_disabled_room(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.api("POST", f"/rooms/{room['id']}", json={"enabled": False})

        assert (await emu.join(room["id"])).status_code == 403


class TestJoinWithToken:
    async def _token(self, emu: Emu, room_id: str) -> str:
        codes = (await emu.api("POST", f"/room-codes/room/{room_id}")).json()["data"]
        body = {"code": codes[0]["code"], "user_id": "creator-1"}
        token: str = (await emu.http.post("/auth/v2/token", json=body)).json()["token"]
        return token

    @pytest.mark.asyncio
    async def test_token_supplies_role_and_user(self, emu: Emu) -> None:
        room = await emu.room()
        token = await self._token(emu, room["id"])

        response = await emu.http.post(
            f"/_emulator/rooms/{room['id']}/peers", json={"token": token, "name": "Ann"}
        )

        peer = response.json()
        assert response.status_code == 201
        assert (peer["role"], peer["user_id"], peer["name"]) == ("broadcaster", "creator-1", "Ann")

    @pytest.mark.asyncio
    async def test_expired_token(self, emu: Emu, clock: FakeClock) -> None:
        room = await emu.room()
        token = await self._token(emu, room["id"])
        clock.advance(hours=24)

        response = await emu.http.post(
            f"/_emulator/rooms/{room['id']}/peers", json={"token": token}
        )

        assert response.status_code == 401
        assert response.json()["message"] == "token is expired"
        assert emu.events("peer.join.success") == []

    @pytest.mark.asyncio
    async def test_token_for_another_room(self, emu: Emu) -> None:
        room, other = await emu.room("a"), await emu.room("b")
        token = await self._token(emu, other["id"])

        response = await emu.http.post(
            f"/_emulator/rooms/{room['id']}/peers", json={"token": token}
        )

        assert response.json()["message"] == "token is for another room"

    @pytest.mark.asyncio
    async def test_management_token_cannot_join(self, emu: Emu) -> None:
        room = await emu.room()

        response = await emu.http.post(
            f"/_emulator/rooms/{room['id']}/peers", json={"token": emu.token()}
        )

        assert response.json()["message"] == "token type is not app"

    @pytest.mark.asyncio
    async def test_token_role_missing_from_template(self, emu: Emu, clock: FakeClock) -> None:
        room = await emu.room()
        now = int(clock().timestamp())
        claims = {
            "access_key": emu.config.access_key,
            "type": "app",
            "version": 2,
            "room_id": room["id"],
            "role": "moderator",
            "user_id": "u",
            "jti": "j",
            "iat": now,
            "nbf": now,
            "exp": now + 60,
        }
        token = jwt.encode(claims, emu.config.app_secret, algorithm="HS256")

        response = await emu.http.post(
            f"/_emulator/rooms/{room['id']}/peers", json={"token": token}
        )

        assert response.status_code == 403
        assert emu.events("peer.join.failure")[0]["data"]["role"] == "moderator"


class TestLeave:
    @pytest.mark.asyncio
    async def test_last_peer_closes_the_session(self, emu: Emu, clock: FakeClock) -> None:
        room, (peer,) = await _live_room(emu, "broadcaster")
        clock.advance(seconds=90)

        response = await emu.http.delete(f"/_emulator/rooms/{room['id']}/peers/{peer['id']}")

        left, closed = emu.events()[-2:]
        assert response.status_code == 200
        assert left["type"] == "peer.leave.success"
        assert set(left["data"]) == PEER_KEYS | {"left_at", "duration", "reason", "message"}
        assert (left["data"]["reason"], left["data"]["duration"]) == ("client request", 90)
        assert closed["type"] == "session.close.success"
        assert closed["data"]["session_duration"] == 90
        assert set(closed["data"]) == ROOM_KEYS | {
            "session_started_at",
            "session_stopped_at",
            "session_duration",
        }

    @pytest.mark.asyncio
    async def test_session_stays_open_while_peers_remain(self, emu: Emu) -> None:
        room, (a, _) = await _live_room(emu, "broadcaster", "viewer")

        await emu.http.delete(
            f"/_emulator/rooms/{room['id']}/peers/{a['id']}", params={"reason": "websocket closed"}
        )

        assert emu.events("peer.leave.success")[0]["data"]["reason"] == "websocket closed"
        assert emu.events("session.close.success") == []

    @pytest.mark.asyncio
    async def test_unknown_peer(self, emu: Emu) -> None:
        room, _ = await _live_room(emu, "viewer")

        response = await emu.http.delete(f"/_emulator/rooms/{room['id']}/peers/{uuid.uuid4()}")

        assert response.status_code == 404


class TestActiveRooms:
    @pytest.mark.asyncio
    async def test_active_room(self, emu: Emu) -> None:
        room, peers = await _live_room(emu, "broadcaster", "viewer")

        body = (await emu.api("GET", f"/active-rooms/{room['id']}")).json()

        assert body["id"] == room["id"]
        assert body["session"]["id"] == peers[0]["session_id"]
        assert body["session"]["peers"] == [p["id"] for p in peers]

    @pytest.mark.asyncio
    async def test_peers_map_and_filters(self, emu: Emu) -> None:
        room, (host, viewer) = await _live_room(emu, "broadcaster", "viewer")
        path = f"/active-rooms/{room['id']}/peers"

        everyone = (await emu.api("GET", path)).json()["peers"]
        viewers = (await emu.api("GET", path, params={"role": "viewer"})).json()["peers"]
        by_user = (await emu.api("GET", path, params={"user_id": "user-0"})).json()["peers"]
        nobody = (await emu.api("GET", path, params={"user_id": "ghost"})).json()["peers"]

        assert set(everyone) == {host["id"], viewer["id"]}
        assert set(everyone[host["id"]]) == {
            "id",
            "name",
            "user_id",
            "metadata",
            "role",
            "joined_at",
        }
        assert list(viewers) == [viewer["id"]]
        assert list(by_user) == [host["id"]]
        assert nobody == {}

    @pytest.mark.asyncio
    async def test_peer_detail_has_tracks(self, emu: Emu) -> None:
        room, (host,) = await _live_room(emu, "broadcaster")

        peer = (await emu.api("GET", f"/active-rooms/{room['id']}/peers/{host['id']}")).json()

        assert sorted(t["type"] for t in peer["tracks"].values()) == ["audio", "video"]

    @pytest.mark.asyncio
    async def test_inactive_room_is_404(self, emu: Emu) -> None:
        room = await emu.room()

        for path in ("", "/peers"):
            response = await emu.api("GET", f"/active-rooms/{room['id']}{path}")
            assert response.status_code == 404
            assert response.json()["code"] == 404

    @pytest.mark.asyncio
    async def test_remove_peer(self, emu: Emu) -> None:
        room, (host, viewer) = await _live_room(emu, "broadcaster", "viewer")

        response = await emu.api(
            "POST",
            f"/active-rooms/{room['id']}/remove-peers",
            json={"peer_id": viewer["id"], "reason": "spam"},
        )

        left = emu.events("peer.leave.success")[0]["data"]
        assert response.json() == {"message": "peer remove request submitted"}
        assert (left["peer_id"], left["reason"], left["message"]) == (
            viewer["id"],
            "peer kicked",
            "spam",
        )
        assert emu.events("session.close.success") == []

    @pytest.mark.asyncio
    async def test_remove_by_role(self, emu: Emu) -> None:
        room, _ = await _live_room(emu, "broadcaster", "viewer", "viewer")

        await emu.api("POST", f"/active-rooms/{room['id']}/remove-peers", json={"role": "viewer"})

        assert len(emu.events("peer.leave.success")) == 2

    @pytest.mark.asyncio
    async def test_remove_needs_a_target(self, emu: Emu) -> None:
        room, _ = await _live_room(emu, "viewer")

        response = await emu.api("POST", f"/active-rooms/{room['id']}/remove-peers", json={})

        assert response.status_code == 400

    @pytest.mark.asyncio
    async def test_end_room_with_lock(self, emu: Emu) -> None:
        room, _ = await _live_room(emu, "broadcaster", "viewer")

        response = await emu.api(
            "POST", f"/active-rooms/{room['id']}/end-room", json={"reason": "done", "lock": True}
        )

        assert response.json() == {"message": "session is ending"}
        assert emu.types()[-4:] == [
            "peer.leave.success",
            "peer.leave.success",
            "session.close.success",
            "room.end.success",
        ]
        ended = emu.events("room.end.success")[0]["data"]
        assert (ended["lock_room"], ended["reason"]) == (True, "done")
        assert (await emu.api("GET", f"/rooms/{room['id']}")).json()["enabled"] is False
        assert (await emu.api("GET", f"/active-rooms/{room['id']}")).status_code == 404

    @pytest.mark.asyncio
    async def test_end_room_without_session(self, emu: Emu) -> None:
        room = await emu.room()

        response = await emu.api("POST", f"/active-rooms/{room['id']}/end-room", json={})

        assert response.status_code == 404


class TestSessions:
    @pytest.mark.asyncio
    async def test_session_has_a_peer_map(self, emu: Emu, clock: FakeClock) -> None:
        room, (host,) = await _live_room(emu, "broadcaster")
        clock.advance(minutes=2)
        await emu.http.delete(f"/_emulator/rooms/{room['id']}/peers/{host['id']}")

        session = (await emu.api("GET", f"/sessions/{host['session_id']}")).json()

        assert session["active"] is False
        assert re.match(r"^[0-9a-f]{24}$", session["id"])
        peer = session["peers"][host["id"]]
        assert (peer["user_id"], peer["role"]) == ("user-0", "broadcaster")
        assert peer["left_at"].endswith("Z")

    @pytest.mark.asyncio
    async def test_list_filters_newest_first(self, emu: Emu, clock: FakeClock) -> None:
        room, (first,) = await _live_room(emu, "broadcaster")
        await emu.http.delete(f"/_emulator/rooms/{room['id']}/peers/{first['id']}")
        clock.advance(minutes=1)
        second = (await emu.join(room["id"], "broadcaster")).json()
        await _live_room(emu, "viewer", name="elsewhere")

        of_room = (await emu.api("GET", "/sessions", params={"room_id": room["id"]})).json()
        active = (
            await emu.api("GET", "/sessions", params={"room_id": room["id"], "active": "true"})
        ).json()

        assert [s["id"] for s in of_room["data"]] == [second["session_id"], first["session_id"]]
        assert [s["id"] for s in active["data"]] == [second["session_id"]]

    @pytest.mark.asyncio
    async def test_unknown_session(self, emu: Emu) -> None:
        response = await emu.api("GET", f"/sessions/{'0' * 24}")

        assert response.status_code == 404
        assert response.json()["message"] == "Error: Session not found"
