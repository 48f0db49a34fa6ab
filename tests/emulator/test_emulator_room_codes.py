from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from tests.emulator.conftest import Emu
from tests.support.fixtures import FakeClock

CODE = re.compile(r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$")


async def _codes(emu: Emu, room_id: str) -> list[dict[str, Any]]:
    response = await emu.api("POST", f"/room-codes/room/{room_id}")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


class TestCreateRoomCodes:
    @pytest.mark.asyncio
    async def test_one_code_per_template_role(self, emu: Emu) -> None:
        room = await emu.room()

        codes = await _codes(emu, room["id"])

        assert [c["role"] for c in codes] == ["broadcaster", "viewer"]
        assert all(CODE.match(c["code"]) and c["enabled"] for c in codes)
        assert {c["room_id"] for c in codes} == {room["id"]}

    @pytest.mark.asyncio
    async def test_for_one_role(self, emu: Emu) -> None:
        room = await emu.room()

        code = (await emu.api("POST", f"/room-codes/room/{room['id']}/role/viewer")).json()
        unknown = await emu.api("POST", f"/room-codes/room/{room['id']}/role/Viewer")

        assert code["role"] == "viewer"
        assert (unknown.status_code, unknown.json()["message"]) == (404, "Role not found")

    @pytest.mark.asyncio
    async def test_unknown_and_disabled_rooms(self, emu: Emu) -> None:
        room = await emu.room()
        await emu.api("POST", f"/rooms/{room['id']}", json={"enabled": False})

        missing = await emu.api("POST", f"/room-codes/room/{'a' * 24}")
        disabled = await emu.api("POST", f"/room-codes/room/{room['id']}")

        assert (missing.status_code, missing.json()["message"]) == (404, "Room not found")
        assert (disabled.status_code, disabled.json()["message"]) == (403, "Room is disabled")


class TestListAndToggleRoomCodes:
    @pytest.mark.asyncio
    async def test_list_with_filters(self, emu: Emu) -> None:
        room = await emu.room()
        codes = await _codes(emu, room["id"])
        await emu.api("POST", "/room-codes/code", json={"code": codes[0]["code"], "enabled": False})
        path = f"/room-codes/room/{room['id']}"

        everything = (await emu.api("GET", path)).json()
        viewers = (await emu.api("GET", path, params={"role": "viewer"})).json()["data"]
        enabled = (await emu.api("GET", path, params={"enabled": "true"})).json()["data"]

        assert everything["limit"] == 10 and len(everything["data"]) == 2
        assert [c["code"] for c in viewers] == [codes[1]["code"]]
        assert [c["code"] for c in enabled] == [codes[1]["code"]]

    @pytest.mark.asyncio
    async def test_toggle(self, emu: Emu) -> None:
        room = await emu.room()
        code = (await _codes(emu, room["id"]))[0]["code"]

        off = await emu.api("POST", "/room-codes/code", json={"code": code, "enabled": False})
        on = await emu.api("POST", "/room-codes/code", json={"code": code, "enabled": True})

        assert off.json()["enabled"] is False
        assert on.json()["enabled"] is True

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"code": "abc-defg-hij", "enabled": False}, 404),
            ({"code": "abc-defg-hij", "enabled": "no"}, 400),
            ({"code": "abc-defg-hij", "enabled": True, "role": "viewer"}, 400),
        ],
    )
    @pytest.mark.asyncio
    async def test_bad_updates(self, emu: Emu, body: dict[str, Any], status: int) -> None:
        response = await emu.api("POST", "/room-codes/code", json=body)

        assert response.status_code == status
        if status == 404:
            assert response.json()["message"] == "Code not found"


class TestExchange:
    @pytest.mark.asyncio
    async def test_code_for_auth_token(self, emu: Emu, clock: FakeClock) -> None:
        room = await emu.room()
        code = (await _codes(emu, room["id"]))[0]["code"]

        response = await emu.http.post("/auth/v2/token", json={"code": code, "user_id": "u-7"})

        body = response.json()
        claims = jwt.decode(body["token"], emu.config.app_secret, algorithms=["HS256"])
        issued = int(clock().timestamp())
        assert response.status_code == 200
        assert claims["access_key"] == emu.config.access_key
        assert (claims["type"], claims["version"]) == ("app", 2)
        assert (claims["room_id"], claims["role"], claims["user_id"]) == (
            room["id"],
            "broadcaster",
            "u-7",
        )
        # Back-dated 10 s like every token 100ms's own code mints.
        assert claims["jti"] and claims["iat"] == claims["nbf"] == issued - 10
        assert claims["exp"] == claims["nbf"] + 24 * 3600
        expires_at = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
        assert expires_at == datetime.fromtimestamp(claims["exp"], UTC)

    @pytest.mark.asyncio
    async def test_generates_a_user_id(self, emu: Emu) -> None:
        room = await emu.room()
        code = (await _codes(emu, room["id"]))[1]["code"]

        token = (await emu.http.post("/auth/v2/token", json={"code": code})).json()["token"]

        claims = jwt.decode(token, emu.config.app_secret, algorithms=["HS256"])
        assert claims["role"] == "viewer" and claims["user_id"]

    @pytest.mark.asyncio
    async def test_unknown_code(self, emu: Emu) -> None:
        response = await emu.http.post("/auth/v2/token", json={"code": "abc-def-ghi"})

        assert response.status_code == 404
        assert response.json() == {"code": 404, "message": "Room code does not exist"}

    @pytest.mark.parametrize("disable", ["code", "room"])
    @pytest.mark.asyncio
    async def test_disabled_code_or_room(self, emu: Emu, disable: str) -> None:
        room = await emu.room()
        code = (await _codes(emu, room["id"]))[0]["code"]
        if disable == "code":
            await emu.api("POST", "/room-codes/code", json={"code": code, "enabled": False})
        else:
            await emu.api("POST", f"/rooms/{room['id']}", json={"enabled": False})

        response = await emu.http.post("/auth/v2/token", json={"code": code})

        assert response.status_code == 403
        assert response.json()["code"] == 403

    @pytest.mark.asyncio
    async def test_cors_for_browsers(self, emu: Emu) -> None:
        origin = {"Origin": "http://127.0.0.1:8000"}
        preflight = await emu.http.options(
            "/auth/v2/token",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
        answer = await emu.http.post("/auth/v2/token", json={"code": "x"}, headers=origin)

        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-origin"] == "*"
