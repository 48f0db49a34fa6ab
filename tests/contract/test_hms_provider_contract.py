"""`HmsProvider`, built from settings as the app builds it, against the emulator over loopback."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from livestage.providers.base import ProviderError, WebhookTarget
from livestage.providers.hms.provider import HmsProvider
from tests.support.emulator import EmulatorHandle, RecordingSleep, WebhookReceiver, wait_until
from tests.support.fixtures import make_settings

MakeProvider = Callable[..., HmsProvider]


@pytest_asyncio.fixture
async def make_provider(emulator: EmulatorHandle) -> AsyncIterator[MakeProvider]:
    made: list[HmsProvider] = []

    def make(**overrides: Any) -> HmsProvider:
        values: dict[str, Any] = {
            **emulator.app_settings(),
            "hms_timeout_seconds": 2.0,
            "hms_max_retries": 2,
        }
        settings = make_settings("sqlite+aiosqlite:///:memory:", **{**values, **overrides})
        provider = HmsProvider.from_settings(settings, sleep=RecordingSleep())
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def hms_provider(make_provider: MakeProvider) -> HmsProvider:
    return make_provider()


def calls(handle: EmulatorHandle, method: str, path: str) -> int:
    return len([r for r in handle.control.requests(method=method) if r["path"] == path])


class TestRoomsAndCodes:
    @pytest.mark.asyncio
    async def test_ensure_room_is_idempotent(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        first = await hms_provider.ensure_room(name="alice-live")
        second = await hms_provider.ensure_room(name="alice-live", description="again")

        with emulator.api() as api:
            rooms = api.get("/rooms").json()["data"]

        assert second == first
        assert [r["id"] for r in rooms] == [first.id]

    @pytest.mark.asyncio
    async def test_room_codes_are_created_once(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")

        first = await hms_provider.ensure_room_codes(room.id)
        second = await hms_provider.ensure_room_codes(room.id)

        assert sorted(c.role for c in first) == ["broadcaster", "viewer"]
        assert {c.code for c in second} == {c.code for c in first}
        assert calls(emulator, "POST", f"/v2/room-codes/room/{room.id}") == 1

    @pytest.mark.asyncio
    async def test_resolve_room_code(self, hms_provider: HmsProvider) -> None:
        room = await hms_provider.ensure_room(name="stage")
        code = (await hms_provider.ensure_room_codes(room.id))[0]

        resolved = await hms_provider.resolve_room_code(code.code)
        await hms_provider.set_room_enabled(room.id, False)
        with pytest.raises(ProviderError) as disabled:
            await hms_provider.resolve_room_code(code.code)
        with pytest.raises(ProviderError) as unknown:
            await hms_provider.resolve_room_code("abc-defg-hij")

        assert (resolved.room_id, resolved.role) == (room.id, code.role)
        assert (disabled.value.status_code, unknown.value.status_code) == (403, 404)


class TestPeers:
    @pytest.mark.asyncio
    async def test_join_token_is_accepted_by_100ms(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")
        join = hms_provider.mint_join_token(
            room_id=room.id, role="broadcaster", user_id="creator-9"
        )

        emulator.control.join_peer(room.id, token=join.token, name="Creator")
        peers = await hms_provider.list_peers(room.id)

        assert [(p.user_id, p.role, p.name) for p in peers] == [
            ("creator-9", "broadcaster", "Creator")
        ]
        assert peers[0].joined_at is not None

    @pytest.mark.asyncio
    async def test_join_token_for_a_missing_role_is_refused(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")
        join = hms_provider.mint_join_token(room_id=room.id, role="moderator", user_id="u")

        emulator.control.join_peer(room.id, token=join.token, expect=403)

        assert emulator.control.events("peer.join.failure")

    @pytest.mark.asyncio
    async def test_no_session(self, hms_provider: HmsProvider) -> None:
        room = await hms_provider.ensure_room(name="stage")

        assert await hms_provider.list_peers(room.id) == []
        await hms_provider.end_room(room.id, reason="nothing live")

    @pytest.mark.asyncio
    async def test_end_room_with_lock(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")
        emulator.control.join_peer(room.id, user_id="creator", role="broadcaster")

        await hms_provider.end_room(room.id, reason="banned", lock=True)

        assert await hms_provider.list_peers(room.id) == []
        ended = emulator.control.events("room.end.success")[0]["data"]
        assert (ended["reason"], ended["lock_room"]) == ("banned", True)
        with emulator.api() as api:
            assert api.get(f"/rooms/{room.id}").json()["enabled"] is False

    @pytest.mark.asyncio
    async def test_remove_user_disconnects_all_their_peers_and_no_one_else(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")
        emulator.control.join_peer(room.id, user_id="creator", role="broadcaster")
        for _ in range(2):  # two tabs of one viewer
            emulator.control.join_peer(room.id, user_id="troll", role="viewer")
        emulator.control.join_peer(room.id, user_id="fan", role="viewer")

        removed = await hms_provider.remove_user(room.id, "troll", reason="banned from chat")

        assert removed == 2
        left = {p.user_id for p in await hms_provider.list_peers(room.id)}
        assert left == {"creator", "fan"}
        assert await hms_provider.remove_user(room.id, "troll", reason="again") == 0


class TestHls:
    @pytest.mark.asyncio
    async def test_start_twice_and_stop_twice(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        room = await hms_provider.ensure_room(name="stage")

        first = await hms_provider.start_hls(room.id)
        second = await hms_provider.start_hls(room.id)
        await hms_provider.stop_hls(room.id)
        await hms_provider.stop_hls(room.id)

        assert second.id == first.id
        assert first.playback_url and first.playback_url.endswith(".m3u8")
        assert [r["status"] for r in emulator.control.requests(path_prefix="/v2/live-streams")] == [
            200,
            409,
            200,
            200,
            404,
        ]

    @pytest.mark.asyncio
    async def test_an_api_made_template_starts_hls_with_the_meeting_url(
        self, hms_provider: HmsProvider, make_provider: MakeProvider, emulator: EmulatorHandle
    ) -> None:
        template_id = await hms_provider.ensure_template("livestage-hls")
        provider = make_provider(hms_template_id=template_id)
        room = await provider.ensure_room(name="stage")
        meeting_url = "https://streams.example.test/watch/alice"

        with pytest.raises(ProviderError) as missing:
            await provider.start_hls(room.id)
        with pytest.raises(ProviderError) as malformed:
            await provider.start_hls(room.id, meeting_url="/watch/alice")
        started = await provider.start_hls(room.id, meeting_url=meeting_url)

        assert (missing.value.status_code, missing.value.transient) == (400, False)
        assert (malformed.value.status_code, malformed.value.transient) == (400, False)
        with emulator.api() as api:
            fetched = api.get(f"/live-streams/{started.id}").json()
        assert fetched["meeting_url"] == meeting_url
        assert started.playback_url == fetched["playback"]["url"]


class TestWebhooks:
    @pytest.mark.asyncio
    async def test_room_webhook_receives_the_session(
        self,
        hms_provider: HmsProvider,
        emulator: EmulatorHandle,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        target = WebhookTarget(webhook_receiver.url, {"X-Livestage-Webhook": "s3cret"})
        room = await hms_provider.ensure_room(name="stage", webhook=target)
        join = hms_provider.mint_join_token(room_id=room.id, role="broadcaster", user_id="creator")

        emulator.control.join_peer(room.id, token=join.token)
        received = webhook_receiver.wait_for(2)

        assert sorted(w.json()["type"] for w in received) == [
            "peer.join.success",
            "session.open.success",
        ]
        assert {w.headers["x-livestage-webhook"] for w in received} == {"s3cret"}


class TestFailures:
    @pytest.mark.asyncio
    async def test_exhausted_5xx_is_transient(
        self, hms_provider: HmsProvider, emulator: EmulatorHandle
    ) -> None:
        emulator.control.queue_fault("/v2/rooms", kind="status", status=500, count=10)

        with pytest.raises(ProviderError) as caught:
            await hms_provider.ensure_room(name="stage")

        assert caught.value.transient is True
        assert caught.value.status_code == 500
        wait_until(lambda: len(emulator.control.requests(path_prefix="/v2")) == 3)

    @pytest.mark.asyncio
    async def test_wrong_credentials_say_what_to_check(self, make_provider: MakeProvider) -> None:
        wrong = make_provider(hms_app_secret=secrets.token_hex(32))

        with pytest.raises(ProviderError) as caught:
            await wrong.ensure_room(name="stage")

        assert caught.value.transient is False
        assert caught.value.status_code == 401
        assert "LIVESTAGE_HMS_APP_SECRET" in caught.value.message
