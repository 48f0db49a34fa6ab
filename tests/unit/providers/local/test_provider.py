"""LocalProvider: deterministic rooms, tokens, what it refuses; the factory's choice."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from livestage.config import Settings
from livestage.providers.base import BrowserSignalling, ProviderError
from livestage.providers.factory import build_provider, describe_choice
from livestage.providers.hms.provider import HmsProvider
from livestage.providers.local.provider import LocalProvider, room_id_for
from livestage.providers.local.tokens import derive_signing_key

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UNCHECKED_TIMES = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "test", "secret_key": secrets.token_urlsafe(32)}
    return Settings(_env_file=None, **{**values, **overrides})


@pytest.fixture
def settings() -> Settings:
    return _settings(local_viewer_cap=3, hms_auth_token_ttl_seconds=600)


@pytest.fixture
def provider(settings: Settings) -> LocalProvider:
    return LocalProvider.from_settings(settings, clock=lambda: NOW)


class TestRooms:
    def test_room_ids_are_24_hex_digits_and_a_function_of_the_name(self) -> None:
        first = room_id_for("livestage-alice")
        assert re.fullmatch(r"[0-9a-f]{24}", first)
        assert room_id_for("livestage-alice") == first
        assert room_id_for("livestage-bob") != first

    @pytest.mark.asyncio
    async def test_ensure_room_is_idempotent_across_instances(
        self, provider: LocalProvider, settings: Settings
    ) -> None:
        room = await provider.ensure_room(name="livestage-alice", description="x")
        again = await provider.ensure_room(name="livestage-alice")
        other = await LocalProvider.from_settings(settings).ensure_room(name="livestage-alice")
        assert room == again == other
        assert room.enabled and room.name == "livestage-alice"

    @pytest.mark.asyncio
    async def test_room_codes_and_hls_are_100ms_features(self, provider: LocalProvider) -> None:
        room = await provider.ensure_room(name="livestage-alice")
        assert await provider.ensure_room_codes(room.id) == []
        with pytest.raises(ProviderError, match="room codes are a 100ms feature"):
            await provider.resolve_room_code("abc-defg-hij")
        with pytest.raises(ProviderError, match="HLS"):
            await provider.start_hls(room.id)
        with pytest.raises(ProviderError, match="HLS"):
            await provider.stop_hls(room.id)

    @pytest.mark.asyncio
    async def test_nothing_is_live_in_a_new_room(self, provider: LocalProvider) -> None:
        room = await provider.ensure_room(name="livestage-alice")
        assert await provider.get_active_session(room.id) is None
        assert await provider.list_peers(room.id) == []
        await provider.end_room(room.id, reason="nothing to end")
        await provider.aclose()


class TestJoinTokens:
    def test_minted_with_the_derived_key_and_the_configured_ttl(
        self, provider: LocalProvider, settings: Settings
    ) -> None:
        minted = provider.mint_join_token(room_id="a" * 24, role="viewer", user_id="viewer-1")
        key = derive_signing_key(settings.secret_key.get_secret_value())
        claims = jwt.decode(minted.token, key, algorithms=["HS256"], options=UNCHECKED_TIMES)
        assert claims["type"] == "app" and claims["access_key"] == "local"
        assert minted.expires_at == NOW - timedelta(seconds=10) + timedelta(seconds=600)
        assert provider.verify_join_token(minted.token, "a" * 24).role == "viewer"

    @pytest.mark.asyncio
    async def test_what_the_page_needs(self, provider: LocalProvider) -> None:
        assert isinstance(provider, BrowserSignalling)
        assert provider.signal_path("abc") == "/ws/local/abc"
        assert provider.viewer_cap == 3
        assert provider.ice_servers == []
        assert await provider.connected_viewers("abc") == 0


class TestSettings:
    def test_defaults(self) -> None:
        settings = _settings()
        assert settings.local_viewer_cap == 16
        assert settings.ice_servers == []
        assert settings.provider == "auto"

    def test_ice_servers_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        servers = (
            '[{"urls": "stun:stun.example.org:3478"},'
            ' {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"}]'
        )
        monkeypatch.setenv("LIVESTAGE_ICE_SERVERS", servers)
        monkeypatch.setenv("LIVESTAGE_LOCAL_VIEWER_CAP", "4")
        settings = _settings()
        provider = LocalProvider.from_settings(settings)
        assert provider.viewer_cap == 4
        assert provider.ice_servers == [
            {"urls": "stun:stun.example.org:3478"},
            {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"},
        ]

    @pytest.mark.parametrize(
        "servers", [[{"urls": "http://example.org"}], [{"urls": []}], [{"url": "stun:x"}]]
    )
    def test_bad_ice_servers_are_refused(self, servers: list[dict[str, Any]]) -> None:
        with pytest.raises(ValidationError):
            _settings(ice_servers=servers)


class TestFactory:
    def test_auto_without_100ms_credentials_is_local(self) -> None:
        assert isinstance(build_provider(_settings()), LocalProvider)

    @pytest.mark.asyncio
    async def test_100ms_when_its_credentials_are_set(self) -> None:
        settings = _settings(hms_access_key="k" * 24, hms_app_secret="s" * 32)
        provider = build_provider(settings)
        assert isinstance(provider, HmsProvider)
        await provider.aclose()

    def test_local_when_chosen_even_with_100ms_credentials(self) -> None:
        settings = _settings(provider="local", hms_access_key="k" * 24, hms_app_secret="s" * 32)
        assert isinstance(build_provider(settings), LocalProvider)

    def test_none_means_no_server_side_provider(self) -> None:
        assert build_provider(_settings(provider="none")) is None

    def test_a_partial_100ms_configuration_is_not_replaced_by_local(self) -> None:
        assert build_provider(_settings(hms_management_token="eyJ.x.y")) is None

    @pytest.mark.parametrize(
        ("overrides", "start"),
        [
            ({}, "provider: local (no 100ms account needed"),
            ({"hms_access_key": "k" * 24, "hms_app_secret": "s" * 32}, "provider: 100ms"),
            ({"hms_access_key": "k" * 24}, "provider: none (the 100ms configuration is incomplete"),
            ({"provider": "none"}, "provider: none (influencers go live with an admin-set"),
        ],
    )
    def test_the_person_starting_the_server_is_told_the_choice(
        self, overrides: dict[str, str], start: str
    ) -> None:
        assert describe_choice(_settings(**overrides)).startswith(start)
        assert build_provider(_settings(provider="hms")) is None
