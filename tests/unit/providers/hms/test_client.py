from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import respx

from livestage.providers.hms.client import HmsClient, exponential_backoff
from livestage.providers.hms.errors import (
    HmsAuthenticationError,
    HmsConflict,
    HmsError,
    HmsNotFound,
    HmsPermissionDenied,
    HmsRequestError,
    HmsResponseError,
    HmsTransientError,
)
from livestage.providers.hms.schemas import LiveStreamRecording, WebhookConfig
from livestage.providers.hms.tokens import (
    ManagementTokenSource,
    StaticManagementToken,
    TokenSource,
    mint_management_token,
)

API = "https://api.100ms.live/v2"
AUTH = "https://auth.100ms.live/v2"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOM_ID = "6324661c4da877930beaecaa"
MAX_RETRIES = 3


class Harness:
    """A client wired to a respx router, a fixed clock and a sleep that only records."""

    def __init__(self, token_source: TokenSource, secret: str) -> None:
        self.router = respx.Router(assert_all_mocked=True, assert_all_called=False)
        self.secret = secret
        self.tokens = token_source
        self.sleeps: list[float] = []
        self.client = HmsClient(
            token_source=token_source,
            transport=httpx.MockTransport(self.router.async_handler),
            max_retries=MAX_RETRIES,
            sleep=self._sleep,
            backoff=lambda attempt: float(2**attempt),
            clock=lambda: NOW,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def last(self) -> httpx.Request:
        request: httpx.Request = self.router.calls.last.request
        return request

    def bearer(self, request: httpx.Request) -> str:
        scheme, _, token = request.headers["Authorization"].partition(" ")
        assert scheme == "Bearer"
        return token

    def assert_management_call(self, request: httpx.Request) -> None:
        claims = jwt.decode(
            self.bearer(request),
            self.secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
        assert claims["type"] == "management"
        assert request.headers["Accept"] == "application/json"

    def assert_clean(self, error: BaseException) -> None:
        text = f"{error} {error!r} {getattr(error, 'details', '')}"
        assert self.secret not in text
        for call in self.router.calls:
            if "Authorization" in call.request.headers:
                assert self.bearer(call.request) not in text


def body_of(request: httpx.Request) -> Any:
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.content)


def room_json(**overrides: Any) -> dict[str, Any]:
    return {
        "id": ROOM_ID,
        "name": "creator-42",
        "enabled": True,
        "description": "Friday show",
        "customer_id": "627cda54ff688c037a39291b",
        "app_id": "627cda54ff688c037a39291c",
        "template_id": "6324661c4da877930beaecab",
        "region": "eu",
        "created_at": "2022-09-09T11:41:08.082Z",
        "updated_at": "0001-01-01T00:00:00Z",
        "webhook": {"url": "https://example.test/hooks", "headers": {"x-secret": "h"}},
        "an_undocumented_field": {"ignored": True},
    } | overrides


def stream_json(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "6324661c4da877930beaecac",
        "room_id": ROOM_ID,
        "session_id": "6324661c4da877930beaecad",
        "status": "starting",
        "meeting_url": "",
        "playback": {"url": "https://cdn.example.test/master.m3u8"},
        "recording": {"hls_vod": False, "single_file_per_layer": False},
        "recording_assets": None,
        "started_by": "",
        "created_at": "2022-10-04T12:10:28.939011796Z",
        "started_at": None,
    } | overrides


def code_json(code: str, role: str, *, enabled: bool = True) -> dict[str, Any]:
    return {"code": code, "room_id": ROOM_ID, "role": role, "enabled": enabled}


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(16)


@pytest_asyncio.fixture
async def hms(secret: str) -> AsyncIterator[Harness]:
    source = ManagementTokenSource(
        access_key=secrets.token_hex(12),
        app_secret=secret,
        ttl=timedelta(hours=1),
        clock=lambda: NOW,
    )
    harness = Harness(source, secret)
    yield harness
    await harness.client.close()


class TestRooms:
    @pytest.mark.asyncio
    async def test_create_room_posts_only_the_given_fields(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms").respond(200, json=room_json())

        room = await hms.client.create_room(
            "creator-42",
            description="Friday show",
            template_id="6324661c4da877930beaecab",
            webhook=WebhookConfig(url="https://example.test/hooks", headers={"x-secret": "h"}),
        )

        hms.assert_management_call(hms.last)
        assert body_of(hms.last) == {
            "name": "creator-42",
            "description": "Friday show",
            "template_id": "6324661c4da877930beaecab",
            "webhook": {"url": "https://example.test/hooks", "headers": {"x-secret": "h"}},
        }
        assert room.id == ROOM_ID
        assert room.enabled
        assert room.webhook == WebhookConfig(
            url="https://example.test/hooks", headers={"x-secret": "h"}
        )
        assert room.created_at == datetime(2022, 9, 9, 11, 41, 8, 82000, tzinfo=UTC)
        assert room.updated_at is None

    @pytest.mark.asyncio
    async def test_get_room(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms/{ROOM_ID}").respond(200, json=room_json())

        room = await hms.client.get_room(ROOM_ID)

        hms.assert_management_call(hms.last)
        assert hms.last.method == "GET"
        assert "Content-Type" not in hms.last.headers
        assert room.name == "creator-42"

    @pytest.mark.asyncio
    async def test_list_rooms_sends_filters_and_parses_the_page(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms").respond(
            200, json={"limit": 10, "data": [room_json()], "last": ROOM_ID}
        )

        page = await hms.client.list_rooms(enabled=True, limit=10)

        assert dict(hms.last.url.params) == {"enabled": "true", "limit": "10"}
        assert page.limit == 10
        assert [room.id for room in page.data] == [ROOM_ID]
        assert not page.has_more

    @pytest.mark.asyncio
    async def test_iter_rooms_follows_last_until_a_short_page(self, hms: Harness) -> None:
        full = [room_json(id=f"{i:024x}") for i in range(100)]
        route = hms.router.get(f"{API}/rooms")
        route.side_effect = [
            httpx.Response(200, json={"limit": 100, "data": full, "last": full[-1]["id"]}),
            httpx.Response(200, json={"limit": 100, "data": [room_json()], "last": ""}),
        ]

        rooms = [room async for room in hms.client.iter_rooms()]

        assert len(rooms) == 101
        first, second = (call.request.url.params for call in route.calls)
        assert dict(first) == {"limit": "100"}
        assert dict(second) == {"limit": "100", "start": full[-1]["id"]}

    @pytest.mark.asyncio
    async def test_set_room_enabled_posts_to_the_room(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms/{ROOM_ID}").respond(200, json=room_json(enabled=False))

        room = await hms.client.set_room_enabled(ROOM_ID, False)

        assert body_of(hms.last) == {"enabled": False}
        assert not room.enabled


class TestRoomCodes:
    @pytest.mark.asyncio
    async def test_create_room_codes_sends_no_body(self, hms: Harness) -> None:
        hms.router.post(f"{API}/room-codes/room/{ROOM_ID}").respond(
            200, json={"data": [code_json("abc-defg-hij", "broadcaster")]}
        )

        codes = await hms.client.create_room_codes(ROOM_ID)

        hms.assert_management_call(hms.last)
        assert hms.last.content == b""
        assert "Content-Type" not in hms.last.headers
        assert [(c.code, c.role) for c in codes] == [("abc-defg-hij", "broadcaster")]

    @pytest.mark.asyncio
    async def test_create_room_code_for_role_quotes_the_role(self, hms: Harness) -> None:
        hms.router.post(f"{API}/room-codes/room/{ROOM_ID}/role/co%20host").respond(
            200, json=code_json("abc-defg-hij", "co host")
        )

        code = await hms.client.create_room_code_for_role(ROOM_ID, "co host")

        assert code.role == "co host"

    @pytest.mark.asyncio
    async def test_list_room_codes_filters_enabled(self, hms: Harness) -> None:
        hms.router.get(f"{API}/room-codes/room/{ROOM_ID}").respond(
            200,
            json={"limit": 100, "data": [code_json("abc-defg-hij", "viewer")], "last": ""},
        )

        codes = await hms.client.list_room_codes(ROOM_ID, enabled=True)

        assert dict(hms.last.url.params) == {"enabled": "true", "limit": "100"}
        assert [c.code for c in codes] == ["abc-defg-hij"]

    @pytest.mark.asyncio
    async def test_set_room_code_enabled(self, hms: Harness) -> None:
        hms.router.post(f"{API}/room-codes/code").respond(
            200, json=code_json("abc-defg-hij", "viewer", enabled=False)
        )

        code = await hms.client.set_room_code_enabled("abc-defg-hij", False)

        assert body_of(hms.last) == {"code": "abc-defg-hij", "enabled": False}
        assert not code.enabled

    @pytest.mark.asyncio
    async def test_exchange_room_code_posts_to_the_auth_host_without_a_bearer(
        self, hms: Harness
    ) -> None:
        issued = secrets.token_urlsafe(24)
        hms.router.post(f"{AUTH}/token").respond(200, json={"token": issued, "expiresAt": "x"})

        token = await hms.client.exchange_room_code("abc-defg-hij", user_id="fan-7")

        assert "Authorization" not in hms.last.headers
        assert body_of(hms.last) == {"code": "abc-defg-hij", "user_id": "fan-7"}
        assert token == issued

    @pytest.mark.asyncio
    async def test_exchange_room_code_omits_a_missing_user_id(self, hms: Harness) -> None:
        hms.router.post(f"{AUTH}/token").respond(200, json={"token": "t"})

        await hms.client.exchange_room_code("abc-defg-hij")

        assert body_of(hms.last) == {"code": "abc-defg-hij"}


class TestActiveRooms:
    @pytest.mark.asyncio
    async def test_get_active_room(self, hms: Harness) -> None:
        session = {"id": "s1", "created_at": "2022-09-09T11:41:08Z", "peers": ["p1", "p2"]}
        hms.router.get(f"{API}/active-rooms/{ROOM_ID}").respond(
            200, json={"id": ROOM_ID, "name": "creator-42", "session": session}
        )

        active = await hms.client.get_active_room(ROOM_ID)

        hms.assert_management_call(hms.last)
        assert active.session is not None
        assert active.session.peers == ["p1", "p2"]

    @pytest.mark.asyncio
    async def test_list_active_peers_by_role(self, hms: Harness) -> None:
        peer = {
            "id": "5c6fb2a6-4d3b-4b1e-9e5d-1f0c2b3a4d5e",
            "name": "Ada",
            "user_id": "fan-7",
            "metadata": "",
            "role": "viewer",
            "joined_at": "2022-09-09T11:41:08.082Z",
        }
        hms.router.get(f"{API}/active-rooms/{ROOM_ID}/peers").respond(
            200, json={"peers": {peer["id"]: peer}}
        )

        peers = await hms.client.list_active_peers(ROOM_ID, role="viewer")

        assert dict(hms.last.url.params) == {"role": "viewer"}
        assert [(p.user_id, p.role) for p in peers] == [("fan-7", "viewer")]

    @pytest.mark.asyncio
    async def test_remove_peers_by_role(self, hms: Harness) -> None:
        hms.router.post(f"{API}/active-rooms/{ROOM_ID}/remove-peers").respond(
            200, json={"message": "peer remove request submitted"}
        )

        await hms.client.remove_peers(ROOM_ID, role="viewer", reason="show over")

        assert body_of(hms.last) == {"role": "viewer", "reason": "show over"}

    @pytest.mark.asyncio
    @pytest.mark.parametrize("targets", [{}, {"peer_id": "p1", "role": "viewer"}])
    async def test_remove_peers_needs_exactly_one_target(
        self, hms: Harness, targets: dict[str, str]
    ) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            await hms.client.remove_peers(ROOM_ID, **targets)

    @pytest.mark.asyncio
    async def test_end_room_with_lock(self, hms: Harness) -> None:
        hms.router.post(f"{API}/active-rooms/{ROOM_ID}/end-room").respond(
            200, json={"message": "session is ending"}
        )

        await hms.client.end_room(ROOM_ID, reason="stream ended", lock=True)

        hms.assert_management_call(hms.last)
        assert body_of(hms.last) == {"reason": "stream ended", "lock": True}


class TestSessions:
    @pytest.mark.asyncio
    async def test_list_sessions_passes_active_explicitly(self, hms: Harness) -> None:
        hms.router.get(f"{API}/sessions").respond(200, json={"limit": 10, "data": [], "last": None})

        await hms.client.list_sessions(room_id=ROOM_ID, active=False)

        assert dict(hms.last.url.params) == {"room_id": ROOM_ID, "active": "false"}

    @pytest.mark.asyncio
    async def test_get_session_parses_the_peer_map(self, hms: Harness) -> None:
        peer = {
            "id": "p1",
            "session_id": "s1",
            "name": "Ada",
            "role": "viewer",
            "user_id": "fan-7",
            "joined_at": "2022-09-09T11:41:08Z",
            "left_at": "2022-09-09T11:51:08Z",
        }
        hms.router.get(f"{API}/sessions/s1").respond(
            200,
            json={"id": "s1", "room_id": ROOM_ID, "active": False, "peers": {"p1": peer}},
        )

        session = await hms.client.get_session("s1")

        peer_seen = session.peers["p1"]
        assert peer_seen.left_at is not None
        assert peer_seen.joined_at is not None
        assert peer_seen.left_at - peer_seen.joined_at == timedelta(minutes=10)


class TestLiveStreams:
    @pytest.mark.asyncio
    async def test_start_sends_meeting_url_and_recording(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/start").respond(200, json=stream_json())

        stream = await hms.client.start_live_stream(
            ROOM_ID,
            meeting_url="https://x.app.100ms.live/preview/r/beam?skip_preview=true",
            recording=LiveStreamRecording(hls_vod=True),
        )

        hms.assert_management_call(hms.last)
        assert body_of(hms.last) == {
            "meeting_url": "https://x.app.100ms.live/preview/r/beam?skip_preview=true",
            "recording": {"hls_vod": True, "single_file_per_layer": False},
        }
        assert stream.status == "starting"
        assert stream.playback_url == "https://cdn.example.test/master.m3u8"

    @pytest.mark.asyncio
    async def test_start_without_options_sends_an_empty_object(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/start").respond(200, json=stream_json())

        await hms.client.start_live_stream(ROOM_ID)

        assert body_of(hms.last) == {}

    @pytest.mark.asyncio
    async def test_stop_all_in_room(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/stop").respond(
            200, json={"data": [stream_json(status="stopping")], "limit": 10, "last": ""}
        )

        stopped = await hms.client.stop_live_streams(ROOM_ID)

        assert [s.status for s in stopped] == ["stopping"]

    @pytest.mark.asyncio
    async def test_stop_get_and_list_one_stream(self, hms: Harness) -> None:
        stream_id = stream_json()["id"]
        hms.router.post(f"{API}/live-streams/{stream_id}/stop").respond(
            200, json=stream_json(status="stopping")
        )
        hms.router.get(f"{API}/live-streams/{stream_id}").respond(
            200, json=stream_json(status="running")
        )
        hms.router.get(f"{API}/live-streams").respond(
            200, json={"limit": 10, "data": [stream_json()], "last": ""}
        )

        assert (await hms.client.stop_live_stream(stream_id)).status == "stopping"
        assert (await hms.client.get_live_stream(stream_id)).status == "running"
        page = await hms.client.list_live_streams(room_id=ROOM_ID)
        assert dict(hms.last.url.params) == {"room_id": ROOM_ID}
        assert [s.id for s in page.data] == [stream_id]


class TestTemplates:
    @pytest.mark.asyncio
    async def test_ensure_livestage_template_sends_broadcaster_and_viewer_roles(
        self, hms: Harness
    ) -> None:
        hms.router.post(f"{API}/templates").respond(
            200,
            json={
                "id": "6324661c4da877930beaecab",
                "name": "livestage",
                "customerId": "627cda54ff688c037a39291b",
                "createdAt": "2022-09-16T12:03:40.503Z",
                "roles": {
                    "host": {"name": "host", "publishParams": {"allowed": ["audio"]}},
                    "viewer": {"name": "viewer", "subscribeParams": {"subscribeToRoles": []}},
                },
            },
        )

        template = await hms.client.ensure_livestage_template(broadcaster_role="host")

        hms.assert_management_call(hms.last)
        body = body_of(hms.last)
        assert body["name"] == "livestage"
        host, viewer = body["roles"]["host"], body["roles"]["viewer"]
        assert host["publishParams"]["allowed"] == ["audio", "video", "screen"]
        assert host["maxPeerCount"] == 1
        assert host["permissions"]["hlsStreaming"] is True
        assert host["permissions"]["endRoom"] is True
        assert viewer["publishParams"]["allowed"] == []
        assert viewer["subscribeParams"]["subscribeToRoles"] == ["host"]
        assert template.customer_id == "627cda54ff688c037a39291b"
        assert template.roles["host"].publish_params.allowed == ["audio"]
        assert template.created_at is not None

    @pytest.mark.asyncio
    async def test_get_and_list_templates(self, hms: Harness) -> None:
        template = {"id": "t1", "name": "livestage", "roles": {}}
        hms.router.get(f"{API}/templates/t1").respond(200, json=template)
        hms.router.get(f"{API}/templates").respond(
            200, json={"limit": 10, "data": [template], "last": "t1"}
        )

        assert (await hms.client.get_template("t1")).name == "livestage"
        page = await hms.client.list_templates(limit=10)
        assert [t.id for t in page.data] == ["t1"]


class TestPermanentErrors:
    @pytest.mark.asyncio
    async def test_400_carries_the_100ms_message_and_details(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms").respond(
            400,
            json={
                "code": 400,
                "message": "Invalid body param",
                "details": ["room size greater than 2500, set large_room flag as true"],
            },
        )

        with pytest.raises(HmsRequestError) as raised:
            await hms.client.create_room("creator-42", size=3000)

        error = raised.value
        assert type(error) is HmsRequestError
        assert error.status_code == 400
        assert error.hms_message == "Invalid body param"
        assert error.details == ["room size greater than 2500, set large_room flag as true"]
        assert str(error) == (
            "100ms POST /v2/rooms answered 400: Invalid body param "
            "(room size greater than 2500, set large_room flag as true)"
        )
        assert hms.sleeps == []
        assert len(hms.router.calls) == 1
        hms.assert_clean(error)

    @pytest.mark.asyncio
    async def test_404_reads_data_description(self, hms: Harness) -> None:
        hms.router.get(f"{API}/sessions/nope").respond(
            404,
            json={
                "code": 404,
                "message": "Error: Session not found",
                "data": {"description": "no such session"},
            },
        )

        with pytest.raises(HmsNotFound) as raised:
            await hms.client.get_session("nope")

        assert raised.value.hms_message == "Error: Session not found"
        assert raised.value.details == ["no such session"]
        hms.assert_clean(raised.value)

    @pytest.mark.asyncio
    async def test_409_is_a_conflict(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/start").respond(
            409, json={"code": 409, "message": "beam already started"}
        )

        with pytest.raises(HmsConflict, match="beam already started"):
            await hms.client.start_live_stream(ROOM_ID)
        assert len(hms.router.calls) == 1

    @pytest.mark.asyncio
    async def test_a_body_that_is_not_json(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms/{ROOM_ID}").respond(
            404, text="<html>404 page not found</html>"
        )

        with pytest.raises(HmsNotFound) as raised:
            await hms.client.get_room(ROOM_ID)

        assert raised.value.hms_message == "<html>404 page not found</html>"
        assert raised.value.details == []

    @pytest.mark.asyncio
    async def test_an_echoed_token_is_redacted(self, hms: Harness) -> None:
        def echo(request: httpx.Request) -> httpx.Response:
            return httpx.Response(400, json={"message": f"bad token {hms.bearer(request)}"})

        hms.router.get(f"{API}/rooms/{ROOM_ID}").mock(side_effect=echo)

        with pytest.raises(HmsRequestError) as raised:
            await hms.client.get_room(ROOM_ID)

        assert raised.value.hms_message == "bad token [redacted]"
        hms.assert_clean(raised.value)

    @pytest.mark.asyncio
    async def test_an_unexpected_success_body(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms/{ROOM_ID}").respond(200, json={"name": "no id"})

        with pytest.raises(HmsResponseError, match=r"GET /v2/rooms/\w+ sent an unexpected body"):
            await hms.client.get_room(ROOM_ID)


class TestTransientErrors:
    @pytest.mark.asyncio
    async def test_429_waits_the_retry_after_seconds(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "slow down"}),
                httpx.Response(200, json={"limit": 10, "data": [], "last": ""}),
            ]
        )

        page = await hms.client.list_rooms()

        assert page.data == []
        assert hms.sleeps == [2.0]

    @pytest.mark.asyncio
    async def test_503_waits_until_the_retry_after_date(self, hms: Harness) -> None:
        when = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
        hms.router.get(f"{API}/rooms/{ROOM_ID}").mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": when}),
                httpx.Response(200, json=room_json()),
            ]
        )

        await hms.client.get_room(ROOM_ID)

        assert hms.sleeps == [7.0]

    @pytest.mark.asyncio
    async def test_a_retry_after_beyond_the_limit_is_not_waited_for(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms").respond(
            429, headers={"Retry-After": "120"}, json={"message": "retry after 120 seconds"}
        )

        with pytest.raises(HmsTransientError) as raised:
            await hms.client.list_rooms()

        assert raised.value.retry_after == 120.0
        assert raised.value.status_code == 429
        assert hms.sleeps == []

    @pytest.mark.asyncio
    async def test_5xx_is_retried_with_backoff_then_gives_up(self, hms: Harness) -> None:
        route = hms.router.post(f"{API}/rooms").respond(
            500, json={"code": 500, "message": "internal error"}
        )

        with pytest.raises(HmsTransientError) as raised:
            await hms.client.create_room("creator-42")

        assert route.call_count == MAX_RETRIES + 1
        assert hms.sleeps == [1.0, 2.0, 4.0]
        assert str(raised.value) == "100ms POST /v2/rooms answered 500: internal error"
        hms.assert_clean(raised.value)

    @pytest.mark.asyncio
    async def test_5xx_then_success(self, hms: Harness) -> None:
        hms.router.get(f"{API}/rooms/{ROOM_ID}").mock(
            side_effect=[httpx.Response(502), httpx.Response(200, json=room_json())]
        )

        assert (await hms.client.get_room(ROOM_ID)).id == ROOM_ID
        assert hms.sleeps == [1.0]

    @pytest.mark.asyncio
    @pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ConnectError])
    async def test_timeouts_and_connection_errors_are_transient(
        self, hms: Harness, failure: type[httpx.TransportError]
    ) -> None:
        route = hms.router.get(f"{API}/rooms/{ROOM_ID}").mock(side_effect=failure)

        with pytest.raises(HmsTransientError) as raised:
            await hms.client.get_room(ROOM_ID)

        assert route.call_count == MAX_RETRIES + 1
        assert raised.value.status_code is None
        assert failure.__name__ in str(raised.value)
        hms.assert_clean(raised.value)


class TestAuthentication:
    @pytest.mark.asyncio
    async def test_401_re_mints_once_and_retries(self, hms: Harness) -> None:
        route = hms.router.get(f"{API}/rooms/{ROOM_ID}").mock(
            side_effect=[
                httpx.Response(401, json={"code": 401, "message": "Token validation error"}),
                httpx.Response(200, json=room_json()),
            ]
        )

        room = await hms.client.get_room(ROOM_ID)

        first, second = (hms.bearer(call.request) for call in route.calls)
        assert first != second
        assert second == await hms.tokens.get()
        assert room.id == ROOM_ID
        assert hms.sleeps == []

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("status", "error_class"), [(401, HmsAuthenticationError), (403, HmsPermissionDenied)]
    )
    async def test_a_second_rejection_raises(
        self, hms: Harness, status: int, error_class: type[HmsAuthenticationError]
    ) -> None:
        route = hms.router.get(f"{API}/rooms").respond(
            status, json={"code": status, "message": "Token validation error"}
        )

        with pytest.raises(error_class) as raised:
            await hms.client.list_rooms()

        assert route.call_count == 2
        assert isinstance(raised.value, HmsAuthenticationError)
        assert raised.value.status_code == status
        hms.assert_clean(raised.value)

    @pytest.mark.asyncio
    async def test_a_dashboard_token_is_not_re_minted(self, secret: str) -> None:
        token = mint_management_token(
            access_key=secrets.token_hex(12), app_secret=secret, ttl=timedelta(days=7), now=NOW
        )
        hms = Harness(StaticManagementToken(token, clock=lambda: NOW), secret)
        route = hms.router.get(f"{API}/rooms").respond(401, json={"message": "Token expired"})

        with pytest.raises(HmsAuthenticationError) as raised:
            await hms.client.list_rooms()
        await hms.client.close()

        assert route.call_count == 1
        assert hms.bearer(hms.last) == token
        hms.assert_clean(raised.value)

    @pytest.mark.asyncio
    async def test_the_room_code_exchange_is_not_re_authenticated(self, hms: Harness) -> None:
        route = hms.router.post(f"{AUTH}/token").respond(
            403, json={"code": 403, "message": "room is not active"}
        )

        with pytest.raises(HmsPermissionDenied):
            await hms.client.exchange_room_code("abc-defg-hij")

        assert route.call_count == 1


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempt", "low", "high"), [(0, 0.25, 0.5), (1, 0.5, 1.0), (3, 2.0, 4.0), (10, 4.0, 8.0)]
    )
    def test_jitter_stays_between_half_and_the_full_ceiling(
        self, attempt: int, low: float, high: float
    ) -> None:
        assert exponential_backoff(attempt, rand=lambda: 0.0) == low
        assert exponential_backoff(attempt, rand=lambda: 1.0) == high


class TestLifecycle:
    @pytest.mark.asyncio
    async def test_context_manager_closes_the_http_client(self, secret: str) -> None:
        source = ManagementTokenSource(
            access_key=secrets.token_hex(12), app_secret=secret, ttl=timedelta(hours=1)
        )
        router = respx.Router(assert_all_mocked=True)
        router.get(f"{API}/rooms/{ROOM_ID}").respond(200, json=room_json())

        async with HmsClient(
            token_source=source, transport=httpx.MockTransport(router.async_handler)
        ) as client:
            await client.get_room(ROOM_ID)

        with pytest.raises(RuntimeError):
            await client.get_room(ROOM_ID)

    def test_every_error_is_an_hms_error(self) -> None:
        for error_class in (HmsTransientError, HmsRequestError, HmsResponseError):
            assert issubclass(error_class, HmsError)
