"""The suite itself refuses any non-loopback connection: 100ms is never called from tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from livestage.config import Settings
from livestage.providers.base import ProviderError
from livestage.providers.hms.provider import HmsProvider
from tests.support import network_guard
from tests.support.network_guard import NonLocalNetworkAccess


@pytest.fixture
def expect_violation() -> Iterator[None]:
    """These tests trip the guard on purpose; clear its record so the autouse check passes."""
    yield
    assert network_guard.violations, "the guard should have recorded the attempt"
    network_guard.violations.clear()


@pytest.mark.usefixtures("expect_violation")
class TestGuard:
    def test_raw_socket_to_a_public_address_is_refused(self) -> None:
        with socket.socket() as s, pytest.raises(NonLocalNetworkAccess):
            s.connect(("203.0.113.10", 443))

    def test_resolving_a_public_name_is_refused(self) -> None:
        with pytest.raises(NonLocalNetworkAccess):
            socket.getaddrinfo("api.100ms.live", 443)

    def test_httpx_to_the_real_100ms_is_refused(self) -> None:
        with pytest.raises((NonLocalNetworkAccess, httpx.ConnectError)):
            httpx.get("https://api.100ms.live/v2/rooms", timeout=2)

    @pytest.mark.asyncio
    async def test_the_provider_with_default_urls_cannot_reach_100ms(self) -> None:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            hms_access_key="k" * 24,
            hms_app_secret=SecretStr("s" * 64),
            hms_max_retries=0,
        )
        provider = HmsProvider.from_settings(settings)
        try:
            with pytest.raises((ProviderError, NonLocalNetworkAccess)):
                await provider.ensure_room(name="livestage-guard")
        finally:
            await provider.aclose()


def test_loopback_is_allowed() -> None:
    assert network_guard.is_loopback("127.0.0.1")
    assert network_guard.is_loopback("localhost")
    assert network_guard.is_loopback("::1")
    assert not network_guard.is_loopback("10.0.0.1")
    assert not network_guard.is_loopback("api.100ms.live")
