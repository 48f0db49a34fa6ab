from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.emulator.conftest import Emu
from tests.support.fixtures import FakeClock

HEX24 = re.compile(r"^[0-9a-f]{24}$")


class TestManagementAuth:
    @pytest.mark.asyncio
    async def test_valid_token_is_accepted(self, emu: Emu) -> None:
        response = await emu.api("GET", "/rooms")

        assert response.status_code == 200

    @pytest.mark.asyncio
    async def test_missing_header(self, emu: Emu) -> None:
        response = await emu.http.get("/v2/rooms")

        assert response.status_code == 401
        assert response.json() == {
            "code": 401,
            "message": "Token validation error",
            "details": ["not found"],
        }

    @pytest.mark.parametrize(
        ("authorization", "detail"),
        [
            ("Bearer not-a-jwt", "token is malformed"),
            ("Basic dXNlcjpwYXNz", "authorization header is not a bearer token"),
        ],
    )
    @pytest.mark.asyncio
    async def test_garbage(self, emu: Emu, authorization: str, detail: str) -> None:
        response = await emu.http.get("/v2/rooms", headers={"Authorization": authorization})

        assert response.status_code == 401
        assert response.json()["message"] == "Token validation error"
        assert response.json()["details"][0].startswith(detail)

    @pytest.mark.parametrize(
        ("claims", "detail"),
        [
            ({"type": "app"}, "token type is not management"),
            ({"access_key": "someone-else"}, "access key does not match"),
            ({"secret": "a-different-secret-of-enough-length"}, "signature is invalid"),
            ({"exp": "never"}, "token has no exp"),
        ],
    )
    @pytest.mark.asyncio
    async def test_wrong_claims(self, emu: Emu, claims: dict[str, Any], detail: str) -> None:
        token = emu.token(**claims)

        response = await emu.http.get("/v2/rooms", headers={"Authorization": f"Bearer {token}"})

        assert response.status_code == 401
        assert response.json()["details"] == [detail]

    @pytest.mark.asyncio
    async def test_expired_at_exactly_exp(self, emu: Emu, clock: FakeClock) -> None:
        token = emu.token(ttl=timedelta(minutes=5))
        clock.advance(minutes=5)

        response = await emu.http.get("/v2/rooms", headers={"Authorization": f"Bearer {token}"})

        assert response.status_code == 401
        assert response.json()["details"] == ["token is expired"]

    @pytest.mark.asyncio
    async def test_not_valid_yet(self, emu: Emu, clock: FakeClock) -> None:
        token = emu.token(nbf=int(clock().timestamp()) + 30)

        response = await emu.http.get("/v2/rooms", headers={"Authorization": f"Bearer {token}"})

        assert response.json()["details"] == ["token is not valid yet"]

    @pytest.mark.asyncio
    async def test_unknown_route_needs_auth_then_is_json_404(self, emu: Emu) -> None:
        assert (await emu.http.get("/v2/nothing-here")).status_code == 401

        response = await emu.api("GET", "/nothing-here")

        assert response.status_code == 404
        assert response.json()["code"] == 404


class TestRooms:
    @pytest.mark.asyncio
    async def test_create_uses_defaults(self, emu: Emu) -> None:
        room = await emu.room("Stage-1")

        assert HEX24.match(room["id"])
        assert room["enabled"] is True
        assert room["template_id"] == emu.config.default_template_id
        assert room["customer_id"] == emu.config.customer_id
        assert room["region"] == "in"
        assert room["created_at"].endswith("Z")

    @pytest.mark.asyncio
    async def test_create_is_an_upsert_by_case_insensitive_name(self, emu: Emu) -> None:
        first = await emu.room("Alice.Live")
        template = (await emu.api("POST", "/templates", json={"name": "other"})).json()

        second = await emu.room("alice.live", template_id=template["id"], description="v2")

        assert second["id"] == first["id"]
        assert second["template_id"] == template["id"]
        assert second["description"] == "v2"
        assert len((await emu.api("GET", "/rooms")).json()["data"]) == 1

    @pytest.mark.asyncio
    async def test_name_defaults_to_a_uuid(self, emu: Emu) -> None:
        room = (await emu.api("POST", "/rooms", json={})).json()

        assert re.match(r"^[0-9a-f-]{36}$", room["name"])

    @pytest.mark.asyncio
    async def test_name_charset(self, emu: Emu) -> None:
        response = await emu.api("POST", "/rooms", json={"name": "bad name!"})

        assert response.status_code == 400
        assert response.json()["message"] == "Invalid body param"

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (
                {"size": 2501},
                "Invalid body param: room size greater than 2500, set large_room flag as true",
            ),
            (
                {"size": 20001, "large_room": True},
                "Invalid body param: room size greater than 20000",
            ),
            (
                {"max_duration_seconds": 119},
                "Invalid body param: max_duration_seconds less than 120 seconds",
            ),
            (
                {"max_duration_seconds": 43201},
                "Invalid body param: max_duration_seconds greater than 43200 seconds",
            ),
            ({"template": "x"}, "Invalid body param: template. Use template_id"),
        ],
    )
    @pytest.mark.asyncio
    async def test_validation_messages(self, emu: Emu, body: dict[str, Any], detail: str) -> None:
        response = await emu.api("POST", "/rooms", json={"name": "r", **body})

        assert response.status_code == 400
        assert response.json() == {
            "code": 400,
            "message": "Invalid body param",
            "details": [detail],
        }

    @pytest.mark.asyncio
    async def test_large_room_within_limits(self, emu: Emu) -> None:
        room = await emu.room("big", size=20000, large_room=True, max_duration_seconds=43200)

        assert (room["size"], room["large_room"]) == (20000, True)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"template_id": "0" * 24}, "Error: template not found"),
            ({"region": "mars"}, "Error: region not supported"),
        ],
    )
    @pytest.mark.asyncio
    async def test_reference_errors(self, emu: Emu, body: dict[str, Any], message: str) -> None:
        response = await emu.api("POST", "/rooms", json={"name": "r", **body})

        assert (response.status_code, response.json()["message"]) == (400, message)

    @pytest.mark.asyncio
    async def test_webhook_is_stored(self, emu: Emu) -> None:
        webhook = {"url": "http://127.0.0.1:1/hook", "headers": {"X-Secret": "s3"}}

        room = await emu.room("hooked", webhook=webhook)

        assert room["webhook"] == webhook

    @pytest.mark.asyncio
    async def test_get_and_404(self, emu: Emu) -> None:
        room = await emu.room()

        assert (await emu.api("GET", f"/rooms/{room['id']}")).json()["name"] == "stage"
        missing = await emu.api("GET", f"/rooms/{'f' * 24}")
        assert missing.status_code == 404
        assert missing.json() == {"code": 404, "message": "Room not found"}

    @pytest.mark.asyncio
    async def test_disable_and_filter(self, emu: Emu) -> None:
        room = await emu.room("off")
        await emu.room("on")

        updated = (await emu.api("POST", f"/rooms/{room['id']}", json={"enabled": False})).json()
        enabled = (await emu.api("GET", "/rooms")).json()["data"]
        disabled = (await emu.api("GET", "/rooms", params={"enabled": "false"})).json()["data"]

        assert updated["enabled"] is False
        assert [r["name"] for r in enabled] == ["on"]
        assert [r["name"] for r in disabled] == ["off"]

    @pytest.mark.asyncio
    async def test_name_filter(self, emu: Emu) -> None:
        await emu.room("one")
        await emu.room("two")

        data = (await emu.api("GET", "/rooms", params={"name": "TWO"})).json()["data"]

        assert [r["name"] for r in data] == ["two"]

    @pytest.mark.asyncio
    async def test_malformed_json(self, emu: Emu) -> None:
        response = await emu.api(
            "POST", "/rooms", content=b'{"name": ', headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 400
        assert response.json()["message"] == "request body contains badly-formed JSON"


class TestPagination:
    @pytest.mark.asyncio
    async def test_walks_every_room_newest_first(self, emu: Emu) -> None:
        for i in range(25):
            await emu.room(f"room-{i:02d}")

        names, start, calls = [], "", 0
        while True:
            params = {"start": start} if start else {}
            page = (await emu.api("GET", "/rooms", params=params)).json()
            calls += 1
            names += [r["name"] for r in page["data"]]
            if len(page["data"]) < page["limit"]:
                break
            start = page["last"]

        assert names == [f"room-{i:02d}" for i in reversed(range(25))]
        assert (calls, page["limit"]) == (3, 10)

    @pytest.mark.parametrize(("asked", "used"), [("1", 10), ("10", 10), ("55", 55), ("1000", 100)])
    @pytest.mark.asyncio
    async def test_limit_is_clamped(self, emu: Emu, asked: str, used: int) -> None:
        page = (await emu.api("GET", "/rooms", params={"limit": asked})).json()

        assert page == {"limit": used, "data": [], "last": ""}

    @pytest.mark.asyncio
    async def test_last_is_the_last_id(self, emu: Emu) -> None:
        await emu.room("a")
        newest = await emu.room("b")

        page = (await emu.api("GET", "/rooms", params={"limit": 1})).json()

        assert page["last"] == (await emu.api("GET", "/rooms")).json()["data"][-1]["id"]
        assert page["data"][0]["id"] == newest["id"]

    @pytest.mark.parametrize("params", [{"limit": "ten"}, {"start": "f" * 24}])
    @pytest.mark.asyncio
    async def test_bad_query(self, emu: Emu, params: dict[str, str]) -> None:
        response = await emu.api("GET", "/rooms", params=params)

        assert (response.status_code, response.json()["message"]) == (
            400,
            "Invalid query parameter",
        )


class TestTemplates:
    ROLES: dict[str, Any] = {
        "host": {"publishParams": {"allowed": ["audio", "video"]}, "maxPeerCount": 1},
        "audience": {"publishParams": {"allowed": []}},
    }

    @pytest.mark.asyncio
    async def test_create_is_camel_case(self, emu: Emu) -> None:
        template = (
            await emu.api("POST", "/templates", json={"name": "t", "roles": self.ROLES})
        ).json()

        assert HEX24.match(template["id"])
        assert template["customerId"] == emu.config.customer_id
        assert set(template["roles"]) == {"host", "audience"}
        assert template["roles"]["host"]["name"] == "host"
        assert {"createdAt", "updatedAt", "settings", "destinations"} <= set(template)

    @pytest.mark.asyncio
    async def test_same_name_overwrites(self, emu: Emu) -> None:
        first = (
            await emu.api("POST", "/templates", json={"name": "t", "roles": self.ROLES})
        ).json()
        roles = {"solo": {"publishParams": {"allowed": ["audio"]}}}

        second = (await emu.api("POST", "/templates", json={"name": "t", "roles": roles})).json()

        assert second["id"] == first["id"]
        assert list(second["roles"]) == ["solo"]

    @pytest.mark.asyncio
    async def test_list_and_get(self, emu: Emu) -> None:
        created = (await emu.api("POST", "/templates", json={"name": "t"})).json()

        listed = (await emu.api("GET", "/templates")).json()
        fetched = await emu.api("GET", f"/templates/{created['id']}")
        missing = await emu.api("GET", f"/templates/{'0' * 24}")

        assert [t["name"] for t in listed["data"]] == ["t", emu.config.default_template_name]
        assert fetched.json()["id"] == created["id"]
        assert missing.status_code == 404

    @pytest.mark.asyncio
    async def test_default_template_roles(self, emu: Emu) -> None:
        path = f"/templates/{emu.config.default_template_id}"
        roles = (await emu.api("GET", path)).json()["roles"]

        assert roles["broadcaster"]["maxPeerCount"] == 1
        assert roles["viewer"]["publishParams"]["allowed"] == []


class TestFaults:
    @pytest.mark.asyncio
    async def test_header_status_skips_the_request(self, emu: Emu) -> None:
        response = await emu.api(
            "POST", "/rooms", json={"name": "x"}, headers={"X-Emulator-Fault": "status=503"}
        )

        assert response.status_code == 503
        assert response.json()["code"] == 503
        assert emu.runtime.state.rooms == {}

    @pytest.mark.asyncio
    async def test_header_429_with_retry_after(self, emu: Emu) -> None:
        response = await emu.api(
            "GET", "/rooms", headers={"X-Emulator-Fault": "status=429;retry_after=2"}
        )

        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"

    @pytest.mark.asyncio
    async def test_header_latency_still_serves(self, emu: Emu) -> None:
        started = time.monotonic()

        response = await emu.api("GET", "/rooms", headers={"X-Emulator-Fault": "latency=0.2"})

        assert response.status_code == 200
        assert time.monotonic() - started >= 0.2

    @pytest.mark.asyncio
    async def test_the_log_tells_when_a_request_came_from_when_it_was_answered(
        self, emu: Emu
    ) -> None:
        received = emu.clock()
        delayed = asyncio.create_task(
            emu.api("GET", "/rooms", headers={"X-Emulator-Fault": "latency=0.5"})
        )
        await asyncio.sleep(0.25)  # in the loop's timers, before the fault's wait ends
        emu.clock.advance(seconds=5)
        assert (await delayed).status_code == 200

        [record] = (await emu.http.get("/_emulator/requests")).json()["data"]
        assert datetime.fromisoformat(record["received_at"]) == received
        assert datetime.fromisoformat(record["timestamp"]) == received + timedelta(seconds=5)

    @pytest.mark.asyncio
    async def test_header_timeout_answers_504_if_nobody_gave_up(self, emu: Emu) -> None:
        response = await emu.api(
            "POST", "/rooms", json={"name": "x"}, headers={"X-Emulator-Fault": "timeout=0.1"}
        )

        assert response.status_code == 504
        assert emu.runtime.state.rooms == {}

    @pytest.mark.asyncio
    async def test_bad_header(self, emu: Emu) -> None:
        response = await emu.api("GET", "/rooms", headers={"X-Emulator-Fault": "explode"})

        assert response.status_code == 400

    @pytest.mark.asyncio
    async def test_queued_fault_hits_only_matching_requests(self, emu: Emu) -> None:
        spec = {"path_prefix": "/v2/rooms", "method": "POST", "kind": "status", "status": 500}
        queued = await emu.http.post("/_emulator/faults", json={**spec, "count": 2})

        get = await emu.api("GET", "/rooms")
        posts = [
            (await emu.api("POST", "/rooms", json={"name": "x"})).status_code for _ in range(3)
        ]

        assert queued.status_code == 201
        assert get.status_code == 200
        assert posts == [500, 500, 200]
        assert (await emu.http.get("/_emulator/faults")).json()["data"] == []

    @pytest.mark.parametrize(
        "spec",
        [{"kind": "boom"}, {"kind": "status", "status": 200}, {"kind": "status", "count": 0}],
    )
    @pytest.mark.asyncio
    async def test_rejects_bad_specs(self, emu: Emu, spec: dict[str, Any]) -> None:
        assert (await emu.http.post("/_emulator/faults", json=spec)).status_code == 400

    @pytest.mark.asyncio
    async def test_request_log(self, emu: Emu) -> None:
        await emu.api("GET", "/rooms", headers={"X-Emulator-Fault": "status=503"})
        await emu.http.get("/v2/rooms")
        await emu.room()

        log = (await emu.http.get("/_emulator/requests")).json()["data"]

        assert [(r["method"], r["path"], r["status"], r["fault"]) for r in log] == [
            ("GET", "/v2/rooms", 503, "status=503"),
            ("GET", "/v2/rooms", 401, None),
            ("POST", "/v2/rooms", 200, None),
        ]
        assert log[2]["token_jti"] and log[2]["token_exp"]
