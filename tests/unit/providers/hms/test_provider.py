from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import respx
from pydantic import SecretStr

from livestage.config import Settings
from livestage.providers.base import (
    HlsStream,
    Peer,
    ProviderError,
    Room,
    RoomCode,
    StreamingProvider,
    WebhookTarget,
)
from livestage.providers.hms.check import check_credentials
from livestage.providers.hms.errors import HmsConflict, HmsNotFound, HmsPermissionDenied
from livestage.providers.hms.provider import (
    APP_CREDENTIALS,
    HmsProvider,
    translate_error,
)
from livestage.providers.hms.tokens import CLOCK_SKEW, mint_auth_token, mint_management_token

API = "https://api.100ms.live/v2"
AUTH = "https://auth.100ms.live/v2"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOM_ID = "6324661c4da877930beaecaa"
TEMPLATE_ID = "6324661c4da877930beaecab"
APP_CREDENTIALS_MESSAGE = (
    "100ms rejected the app credentials (401): "
    "check LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET"
)


class Credentials:
    def __init__(self) -> None:
        self.access_key = secrets.token_hex(12)
        self.secret = secrets.token_hex(16)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "hms_access_key": self.access_key,
            "hms_app_secret": SecretStr(self.secret),
            "hms_template_id": TEMPLATE_ID,
            "hms_max_retries": 1,
            "hms_auth_token_ttl_seconds": 3600,
        }
        return Settings(_env_file=None, **(values | overrides))

    def dashboard_token(self, *, ttl: timedelta = timedelta(days=7), now: datetime = NOW) -> str:
        return mint_management_token(
            access_key=self.access_key, app_secret=self.secret, ttl=ttl, now=now
        )

    def room_token(self, *, secret: str | None = None, role: str = "viewer") -> str:
        return mint_auth_token(
            access_key=self.access_key,
            app_secret=secret or self.secret,
            room_id=ROOM_ID,
            role=role,
            user_id="100ms-generated",
            ttl=timedelta(hours=1),
            now=NOW,
        )


class Harness:
    def __init__(self, credentials: Credentials, settings: Settings) -> None:
        self.credentials = credentials
        self.router = respx.Router(assert_all_mocked=True, assert_all_called=False)
        self.transport = httpx.MockTransport(self.router.async_handler)
        self.sleeps: list[float] = []
        self.provider = HmsProvider.from_settings(
            settings, transport=self.transport, clock=lambda: NOW, sleep=self._sleep
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def last(self) -> httpx.Request:
        request: httpx.Request = self.router.calls.last.request
        return request


@pytest.fixture
def credentials() -> Credentials:
    return Credentials()


@pytest_asyncio.fixture
async def hms(credentials: Credentials) -> AsyncIterator[Harness]:
    harness = Harness(credentials, credentials.settings())
    yield harness
    await harness.provider.aclose()


def code_json(code: str, role: str, *, enabled: bool = True) -> dict[str, Any]:
    return {"code": code, "room_id": ROOM_ID, "role": role, "enabled": enabled}


def room_json(**overrides: Any) -> dict[str, Any]:
    return {"id": ROOM_ID, "name": "creator-42", "enabled": True} | overrides


def stream_json(status: str) -> dict[str, Any]:
    return {
        "id": f"{status:0>24}"[:24],
        "room_id": ROOM_ID,
        "status": status,
        "playback": {"url": "https://cdn.example.test/master.m3u8"},
    }


def page(*items: dict[str, Any]) -> dict[str, Any]:
    return {"limit": 10, "data": list(items), "last": ""}


class TestHmsProvider:
    def test_satisfies_the_streaming_provider_protocol(self, hms: Harness) -> None:
        provider: StreamingProvider = hms.provider
        assert provider.name == "hms"

    def test_needs_credentials(self, credentials: Credentials) -> None:
        settings = credentials.settings(hms_access_key="", hms_app_secret=SecretStr(""))

        with pytest.raises(ProviderError, match="set LIVESTAGE_HMS_ACCESS_KEY and"):
            HmsProvider.from_settings(settings)

    def test_a_secret_without_an_access_key(self, credentials: Credentials) -> None:
        settings = credentials.settings(hms_access_key="")

        with pytest.raises(ProviderError, match="set LIVESTAGE_HMS_ACCESS_KEY"):
            HmsProvider.from_settings(settings)


class TestEnsureRoom:
    @pytest.mark.asyncio
    async def test_upserts_with_the_configured_template_and_webhook(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms").respond(200, json=room_json())

        room = await hms.provider.ensure_room(
            name="creator-42",
            webhook=WebhookTarget(url="https://example.test/hooks", headers={"x-k": "v"}),
        )

        assert room == Room(id=ROOM_ID, name="creator-42", enabled=True)
        assert httpx.Response(200, content=hms.last.content).json() == {
            "name": "creator-42",
            "template_id": TEMPLATE_ID,
            "webhook": {"url": "https://example.test/hooks", "headers": {"x-k": "v"}},
        }


class TestEnsureRoomCodes:
    @pytest.mark.asyncio
    async def test_returns_existing_enabled_codes(self, hms: Harness) -> None:
        hms.router.get(f"{API}/room-codes/room/{ROOM_ID}").respond(
            200, json=page(code_json("abc-defg-hij", "broadcaster"))
        )
        create = hms.router.post(f"{API}/room-codes/room/{ROOM_ID}")

        codes = await hms.provider.ensure_room_codes(ROOM_ID)

        assert codes == [RoomCode("abc-defg-hij", ROOM_ID, "broadcaster", True)]
        assert not create.called

    @pytest.mark.asyncio
    async def test_creates_codes_when_there_are_none(self, hms: Harness) -> None:
        hms.router.get(f"{API}/room-codes/room/{ROOM_ID}").respond(200, json=page())
        hms.router.post(f"{API}/room-codes/room/{ROOM_ID}").respond(
            200,
            json={
                "data": [
                    code_json("abc-defg-hij", "broadcaster"),
                    code_json("klm-nopq-rst", "viewer"),
                ]
            },
        )

        codes = await hms.provider.ensure_room_codes(ROOM_ID)

        assert [(c.code, c.role) for c in codes] == [
            ("abc-defg-hij", "broadcaster"),
            ("klm-nopq-rst", "viewer"),
        ]


class TestResolveRoomCode:
    @pytest.mark.asyncio
    async def test_reads_room_and_role_from_the_verified_token(
        self, hms: Harness, credentials: Credentials
    ) -> None:
        hms.router.post(f"{AUTH}/token").respond(200, json={"token": credentials.room_token()})

        code = await hms.provider.resolve_room_code("abc-defg-hij")

        assert code == RoomCode("abc-defg-hij", ROOM_ID, "viewer", True)
        assert "Authorization" not in hms.last.headers

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("status", "message"),
        [
            (403, "this room code is disabled or its room is inactive"),
            (404, "room code not found"),
        ],
    )
    async def test_refusals(self, hms: Harness, status: int, message: str) -> None:
        hms.router.post(f"{AUTH}/token").respond(status, json={"code": status, "message": "no"})

        with pytest.raises(ProviderError) as raised:
            await hms.provider.resolve_room_code("abc-defg-hij")

        assert raised.value.message == message
        assert raised.value.status_code == status
        assert not raised.value.transient

    @pytest.mark.asyncio
    async def test_a_reply_that_is_not_a_jwt_is_refused(self, hms: Harness) -> None:
        hms.router.post(f"{AUTH}/token").respond(200, json={"token": "not-a-jwt"})

        with pytest.raises(ProviderError, match="not a JWT"):
            await hms.provider.resolve_room_code("abc-defg-hij")

    @pytest.mark.asyncio
    async def test_without_an_app_secret_the_token_is_only_decoded(
        self, credentials: Credentials
    ) -> None:
        settings = credentials.settings(
            hms_app_secret=SecretStr(""),
            hms_management_token=SecretStr(credentials.dashboard_token()),
        )
        harness = Harness(credentials, settings)
        token = credentials.room_token(secret=secrets.token_hex(16), role="broadcaster")
        harness.router.post(f"{AUTH}/token").respond(200, json={"token": token})

        code = await harness.provider.resolve_room_code("abc-defg-hij")
        await harness.provider.aclose()

        assert code.role == "broadcaster"


class TestMintJoinToken:
    def test_mints_an_auth_token_with_the_settings_ttl(
        self, hms: Harness, credentials: Credentials
    ) -> None:
        joined = hms.provider.mint_join_token(room_id=ROOM_ID, role="viewer", user_id="fan-7")

        claims = jwt.decode(
            joined.token,
            credentials.secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
        assert (claims["type"], claims["room_id"], claims["role"], claims["user_id"]) == (
            "app",
            ROOM_ID,
            "viewer",
            "fan-7",
        )
        assert joined.expires_at == NOW - CLOCK_SKEW + timedelta(hours=1)
        assert (joined.room_id, joined.role, joined.user_id) == (ROOM_ID, "viewer", "fan-7")

    def test_bad_input_is_a_provider_error(self, hms: Harness) -> None:
        with pytest.raises(ProviderError, match="user_id must not be empty"):
            hms.provider.mint_join_token(room_id=ROOM_ID, role="viewer", user_id="")

    def test_needs_the_app_secret(self, credentials: Credentials) -> None:
        settings = credentials.settings(
            hms_app_secret=SecretStr(""),
            hms_management_token=SecretStr(credentials.dashboard_token()),
        )
        provider = HmsProvider.from_settings(settings, clock=lambda: NOW)

        with pytest.raises(ProviderError, match="needs LIVESTAGE_HMS_ACCESS_KEY and"):
            provider.mint_join_token(room_id=ROOM_ID, role="viewer", user_id="fan-7")


class TestRoomLifecycle:
    @pytest.mark.asyncio
    async def test_set_room_enabled(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms/{ROOM_ID}").respond(200, json=room_json(enabled=False))

        room = await hms.provider.set_room_enabled(ROOM_ID, False)

        assert not room.enabled

    @pytest.mark.asyncio
    async def test_end_room(self, hms: Harness) -> None:
        hms.router.post(f"{API}/active-rooms/{ROOM_ID}/end-room").respond(
            200, json={"message": "session is ending"}
        )

        await hms.provider.end_room(ROOM_ID, reason="show over", lock=True)

        assert httpx.Response(200, content=hms.last.content).json() == {
            "reason": "show over",
            "lock": True,
        }

    @pytest.mark.asyncio
    async def test_end_room_without_a_session_is_not_an_error(self, hms: Harness) -> None:
        hms.router.post(f"{API}/active-rooms/{ROOM_ID}/end-room").respond(
            404, json={"code": 404, "message": "room not active"}
        )

        await hms.provider.end_room(ROOM_ID, reason="show over")

    @pytest.mark.asyncio
    async def test_list_peers(self, hms: Harness) -> None:
        peer = {
            "id": "p1",
            "name": "Ada",
            "user_id": "fan-7",
            "role": "viewer",
            "joined_at": "2022-09-09T11:41:08Z",
        }
        hms.router.get(f"{API}/active-rooms/{ROOM_ID}/peers").respond(
            200, json={"peers": {"p1": peer}}
        )

        peers = await hms.provider.list_peers(ROOM_ID)

        joined = datetime(2022, 9, 9, 11, 41, 8, tzinfo=UTC)
        assert peers == [Peer("p1", "fan-7", "viewer", "Ada", joined)]

    @pytest.mark.asyncio
    async def test_list_peers_of_an_idle_room(self, hms: Harness) -> None:
        hms.router.get(f"{API}/active-rooms/{ROOM_ID}/peers").respond(404, json={"code": 404})

        assert await hms.provider.list_peers(ROOM_ID) == []


class TestHls:
    @pytest.mark.asyncio
    async def test_start(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/start").respond(
            200, json=stream_json("starting")
        )

        stream = await hms.provider.start_hls(ROOM_ID)

        assert stream == HlsStream(
            stream_json("starting")["id"],
            ROOM_ID,
            "starting",
            "https://cdn.example.test/master.m3u8",
        )

    @pytest.mark.asyncio
    async def test_start_when_already_running_returns_the_running_stream(
        self, hms: Harness
    ) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/start").respond(
            409, json={"code": 409, "message": "beam already started"}
        )
        hms.router.get(f"{API}/live-streams").respond(
            200, json=page(stream_json("completed"), stream_json("running"))
        )

        stream = await hms.provider.start_hls(ROOM_ID)

        assert stream.status == "running"
        assert dict(hms.last.url.params) == {"room_id": ROOM_ID}

    @pytest.mark.asyncio
    async def test_stop_with_nothing_running(self, hms: Harness) -> None:
        hms.router.post(f"{API}/live-streams/room/{ROOM_ID}/stop").respond(
            404, json={"code": 404, "message": "beam not found"}
        )

        await hms.provider.stop_hls(ROOM_ID)


class TestErrorTranslation:
    @pytest.mark.asyncio
    async def test_401_names_the_app_credentials(
        self, hms: Harness, credentials: Credentials
    ) -> None:
        hms.router.post(f"{API}/rooms").respond(
            401, json={"code": 401, "message": "Token validation error"}
        )

        with pytest.raises(ProviderError) as raised:
            await hms.provider.ensure_room(name="creator-42")

        assert raised.value.message == APP_CREDENTIALS_MESSAGE
        assert raised.value.status_code == 401
        assert not raised.value.transient
        assert credentials.secret not in str(raised.value)

    @pytest.mark.asyncio
    async def test_401_with_a_dashboard_token_names_that_token(
        self, credentials: Credentials
    ) -> None:
        token = credentials.dashboard_token()
        settings = credentials.settings(
            hms_app_secret=SecretStr(""), hms_management_token=SecretStr(token)
        )
        harness = Harness(credentials, settings)
        harness.router.post(f"{API}/rooms").respond(401, json={"message": "Token expired"})

        with pytest.raises(ProviderError) as raised:
            await harness.provider.ensure_room(name="creator-42")
        await harness.provider.aclose()

        assert raised.value.message == (
            "100ms rejected the configured management token (401): "
            "check LIVESTAGE_HMS_MANAGEMENT_TOKEN"
        )
        assert token not in raised.value.message

    @pytest.mark.asyncio
    async def test_an_expired_dashboard_token(self, credentials: Credentials) -> None:
        token = credentials.dashboard_token(now=NOW - timedelta(days=8))
        settings = credentials.settings(
            hms_app_secret=SecretStr(""), hms_management_token=SecretStr(token)
        )
        harness = Harness(credentials, settings)

        with pytest.raises(ProviderError, match="LIVESTAGE_HMS_MANAGEMENT_TOKEN expired at"):
            await harness.provider.set_room_enabled(ROOM_ID, True)
        await harness.provider.aclose()

    @pytest.mark.asyncio
    async def test_failures_that_persist_are_transient(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms").respond(503, json={"message": "upstream down"})

        with pytest.raises(ProviderError) as raised:
            await hms.provider.ensure_room(name="creator-42")

        assert raised.value.message == (
            "100ms is unreachable or failing (100ms POST /v2/rooms answered 503: upstream down); "
            "try again in a minute"
        )
        assert raised.value.transient
        assert raised.value.status_code == 503
        assert len(hms.sleeps) == 1

    @pytest.mark.asyncio
    async def test_a_timeout_is_transient(self, hms: Harness) -> None:
        hms.router.get(f"{API}/active-rooms/{ROOM_ID}/peers").mock(side_effect=httpx.ReadTimeout)

        with pytest.raises(ProviderError) as raised:
            await hms.provider.list_peers(ROOM_ID)

        assert raised.value.transient
        assert "ReadTimeout" in raised.value.message

    @pytest.mark.asyncio
    async def test_a_bad_request_quotes_100ms(self, hms: Harness) -> None:
        hms.router.post(f"{API}/rooms").respond(
            400, json={"code": 400, "message": "Error: template not found"}
        )

        with pytest.raises(ProviderError) as raised:
            await hms.provider.ensure_room(name="creator-42")

        assert raised.value.message == (
            "100ms rejected creating room 'creator-42' (400: Error: template not found)"
        )

    def test_translations_of_other_statuses(self) -> None:
        request = httpx.Request("POST", f"{API}/live-streams/room/{ROOM_ID}/start")
        cases = [
            (HmsPermissionDenied, 403, "Room is disabled", "100ms refused starting HLS"),
            (HmsNotFound, 404, "Room not found", "100ms found nothing while starting HLS"),
            (HmsConflict, 409, "beam already started", "100ms reported a conflict while"),
        ]
        for error_class, status, said, start in cases:
            response = httpx.Response(status, json={"message": said}, request=request)
            error = translate_error(
                error_class.from_response(response),
                doing="starting HLS",
                credentials=APP_CREDENTIALS,
            )
            assert error.message.startswith(start)
            assert f"({status}: {said})" in error.message
            assert error.status_code == status


class TestCheckCredentials:
    @pytest.mark.asyncio
    async def test_all_green(self, credentials: Credentials) -> None:
        router = respx.Router(assert_all_mocked=True)
        router.get(f"{API}/rooms").respond(200, json=page(room_json()))
        router.get(f"{API}/templates/{TEMPLATE_ID}").respond(
            200,
            json={
                "id": TEMPLATE_ID,
                "name": "livestage",
                "roles": {"broadcaster": {"name": "broadcaster"}, "viewer": {"name": "viewer"}},
            },
        )

        report = await check_credentials(
            credentials.settings(), transport=httpx.MockTransport(router.async_handler)
        )

        assert [line.what for line in report.lines] == [
            "access key",
            "app secret",
            "management token",
            "rooms API",
            "template",
        ]
        assert report.ok, report.lines
        assert dict(router.calls[0].request.url.params) == {"limit": "10"}
        printed = " ".join(f"{line.what} {line.detail}" for line in report.lines)
        assert credentials.secret not in printed

    @pytest.mark.asyncio
    async def test_rejected_credentials(self, credentials: Credentials) -> None:
        router = respx.Router(assert_all_mocked=True)
        router.get(f"{API}/rooms").respond(401, json={"message": "Token validation error"})

        report = await check_credentials(
            credentials.settings(), transport=httpx.MockTransport(router.async_handler)
        )

        assert not report.ok
        assert report.lines[-1].what == "rooms API"
        assert report.lines[-1].detail == APP_CREDENTIALS_MESSAGE

    @pytest.mark.asyncio
    async def test_expired_dashboard_token(self, credentials: Credentials) -> None:
        token = credentials.dashboard_token(now=NOW - timedelta(days=8))
        settings = credentials.settings(
            hms_app_secret=SecretStr(""), hms_management_token=SecretStr(token)
        )

        router = respx.Router(assert_all_mocked=True)

        report = await check_credentials(
            settings, transport=httpx.MockTransport(router.async_handler), clock=lambda: NOW
        )

        assert not report.ok
        token_line = report.lines[-1]
        assert token_line.what == "management token"
        assert "expired at" in token_line.detail
        assert token not in token_line.detail
        assert not router.calls

    @pytest.mark.asyncio
    async def test_template_missing_a_role(self, credentials: Credentials) -> None:
        router = respx.Router(assert_all_mocked=True)
        router.get(f"{API}/rooms").respond(200, json=page())
        router.get(f"{API}/templates/{TEMPLATE_ID}").respond(
            200, json={"id": TEMPLATE_ID, "name": "old", "roles": {"host": {"name": "host"}}}
        )

        report = await check_credentials(
            credentials.settings(), transport=httpx.MockTransport(router.async_handler)
        )

        assert report.lines[-1].detail == "template 'old' lacks role(s) broadcaster, viewer"
        assert not report.ok

    @pytest.mark.asyncio
    async def test_no_template_configured_points_at_the_livestage_template(
        self, credentials: Credentials
    ) -> None:
        router = respx.Router(assert_all_mocked=True)
        router.get(f"{API}/rooms").respond(200, json=page())
        router.get(f"{API}/templates").respond(
            200, json=page({"id": TEMPLATE_ID, "name": "livestage"})
        )

        report = await check_credentials(
            credentials.settings(hms_template_id=""),
            transport=httpx.MockTransport(router.async_handler),
        )

        assert f"set LIVESTAGE_HMS_TEMPLATE_ID={TEMPLATE_ID}" in report.lines[-1].detail
