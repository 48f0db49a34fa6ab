"""The client inside a caller's budget (`kit.deadlines`): its timeouts and retries together
stop at the caller's deadline, whatever `timeout` and `max_retries` say."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
import respx

from livestage.kit import deadlines
from livestage.providers.hms.client import HmsClient
from livestage.providers.hms.errors import HmsDeadlineExceeded, HmsTransientError
from livestage.providers.hms.tokens import ManagementTokenSource

API = "https://api.100ms.live/v2"

pytestmark = pytest.mark.asyncio


class Harness:
    """A client on a respx router whose back-off only records (no time passes)."""

    def __init__(self) -> None:
        self.router = respx.Router(assert_all_mocked=True, assert_all_called=False)
        self.sleeps: list[float] = []
        source = ManagementTokenSource(
            access_key=secrets.token_hex(12),
            app_secret=secrets.token_hex(16),
            ttl=timedelta(hours=1),
        )
        self.client = HmsClient(
            token_source=source,
            transport=httpx.MockTransport(self.router.async_handler),
            timeout=10.0,
            max_retries=6,
            sleep=self._sleep,
            backoff=lambda attempt: float(2**attempt),
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest_asyncio.fixture
async def hms() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.client.close()


async def test_no_retry_starts_that_the_deadline_would_cut_short(hms: Harness) -> None:
    route = hms.router.post(f"{API}/rooms").respond(503, json={"message": "unavailable"})
    with deadlines.within(3.5), pytest.raises(HmsDeadlineExceeded) as raised:
        await hms.client.create_room("creator-42")
    # 1 s and 2 s fit in 3.5 s; the next back-off (4 s) does not, so the client stops there.
    assert hms.sleeps == [1.0, 2.0]
    assert route.call_count == 3
    assert raised.value.message == (
        "100ms POST /rooms: no answer before the caller's deadline "
        "(last try: 100ms POST /v2/rooms answered 503: unavailable)"
    )
    assert isinstance(raised.value, HmsTransientError)


async def test_a_call_100ms_never_answers_ends_at_the_deadline_not_the_timeout(
    hms: Harness,
) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    hms.router.post(f"{API}/rooms").mock(side_effect=never)
    started = time.monotonic()
    with deadlines.within(0.3), pytest.raises(HmsDeadlineExceeded):
        await hms.client.create_room("creator-42")
    assert time.monotonic() - started < 2
    assert hms.sleeps == []


async def test_a_spent_budget_sends_nothing(hms: Harness) -> None:
    route = hms.router.post(f"{API}/rooms").respond(200, json={})
    with deadlines.within(0), pytest.raises(HmsDeadlineExceeded):
        await hms.client.create_room("creator-42")
    assert route.call_count == 0


async def test_without_a_budget_every_retry_is_made(hms: Harness) -> None:
    route = hms.router.post(f"{API}/rooms").respond(503, json={"message": "unavailable"})
    with pytest.raises(HmsTransientError) as raised:
        await hms.client.create_room("creator-42")
    assert not isinstance(raised.value, HmsDeadlineExceeded)
    assert hms.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert route.call_count == 7
