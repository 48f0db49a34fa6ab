"""Start Streaming with HLS (issue 14 item 5), against the 100ms emulator on loopback: HLS
starts with livestage's watch page as the recorder's meeting_url, the hls.* events reach the
stream's record, End Stream stops it, and HLS failing never stops the stream going live."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio

from livestage.app import AppState
from livestage.models import LiveStream
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from tests.support.emulator import EmulatorHandle, wait_until
from tests.support.fixtures import InfluencerAccount, create_influencer, login_influencer

pytestmark = pytest.mark.asyncio
START = {"title": "Friday night set", "description": "", "hls": True}
PUBLIC_URL = "https://streams.example.test"


def _hms_settings(emulator: EmulatorHandle, **extra: Any) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "hms_max_retries": 1,
        "hms_timeout_seconds": 2,
        **extra,
    }


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return _hms_settings(emulator, public_url=PUBLIC_URL)


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def creator_client(
    client: httpx.AsyncClient, creator: InfluencerAccount
) -> httpx.AsyncClient:
    await login_influencer(client, creator)
    return client


def _live_streams(emulator: EmulatorHandle, room_id: str) -> list[dict[str, Any]]:
    with emulator.api() as api:
        streams: list[dict[str, Any]] = api.get(
            "/live-streams", params={"room_id": room_id}
        ).json()["data"]
    return streams


async def _deliver(
    client: httpx.AsyncClient, ctx: AppState, emulator: EmulatorHandle, event_type: str
) -> None:
    """The emulator's webhooks go to the public URL, unreachable from a test: hand them over."""
    for envelope in wait_until(lambda: emulator.control.events(event_type)):
        response = await client.post(
            "/webhooks/100ms",
            json=envelope,
            headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret},
        )
        assert response.status_code == 200, response.text
    assert ctx.ingestion.worker is not None
    await ctx.ingestion.worker.drain()


async def _current(client: httpx.AsyncClient) -> dict[str, Any]:
    stream: dict[str, Any] = (await client.get("/api/streams/current")).json()["stream"]
    return stream


class TestHlsOn100ms:
    async def test_hls_starts_with_the_watch_page_and_the_record_follows_it(
        self, creator_client: httpx.AsyncClient, emulator: EmulatorHandle, ctx: AppState
    ) -> None:
        response = await creator_client.post("/api/streams", json=START)
        assert response.status_code == 201, response.text
        stream = response.json()["stream"]

        (started,) = _live_streams(emulator, stream["room_id"])
        assert started["meeting_url"] == f"{PUBLIC_URL}/watch/alice"
        assert stream["hls_status"] == "starting" and stream["hls_problem"] is None
        assert stream["hls_url"] == started["playback"]["url"]

        await _deliver(creator_client, ctx, emulator, "hls.started.success")
        assert (await _current(creator_client))["hls_status"] == "running"

        emulator.control.join_peer(stream["room_id"], user_id="u", role="broadcaster")
        await creator_client.post("/api/streams/current/joined")
        ended = await creator_client.post("/api/streams/current/end")
        assert ended.status_code == 200, ended.text
        wait_until(lambda: _live_streams(emulator, stream["room_id"])[0]["status"] == "completed")
        await _deliver(creator_client, ctx, emulator, "hls.stopped.success")
        (stopped,) = emulator.control.events("hls.stopped.success")
        assert stopped["data"]["reason"] == "client request"
        async with ctx.database.sessionmaker() as session:
            record = await session.get(LiveStream, uuid.UUID(stream["id"]))
            assert record is not None
            assert (record.hls_status, record.hls_url) == ("stopped", started["playback"]["url"])

    async def test_the_form_offers_hls(self, creator_client: httpx.AsyncClient) -> None:
        page = await creator_client.get("/influencer/live")

        assert 'name="hls"' in page.text

    async def test_without_hls_nothing_is_started(
        self, creator_client: httpx.AsyncClient, emulator: EmulatorHandle
    ) -> None:
        response = await creator_client.post("/api/streams", json={**START, "hls": False})
        stream = response.json()["stream"]

        assert stream["hls_status"] is None
        assert _live_streams(emulator, stream["room_id"]) == []

    async def test_hls_failing_still_goes_live_and_says_why(
        self, creator_client: httpx.AsyncClient, emulator: EmulatorHandle
    ) -> None:
        emulator.control.queue_fault("/v2/live-streams", kind="status", status=503, count=5)

        response = await creator_client.post("/api/streams", json=START)

        assert response.status_code == 201, response.text
        stream = response.json()["stream"]
        assert stream["status"] == "starting" and response.json()["join"]["token"]
        assert stream["hls_status"] == "failed"
        assert "503" in stream["hls_problem"]
        current = await _current(creator_client)
        assert (current["hls_status"], current["hls_problem"]) == ("failed", stream["hls_problem"])
        joined = await creator_client.post("/api/streams/current/joined")
        assert joined.json()["status"] == "live"

    async def test_the_stream_page_says_hls_did_not_start(
        self, creator_client: httpx.AsyncClient, emulator: EmulatorHandle, ctx: AppState
    ) -> None:
        emulator.control.queue_fault("/v2/live-streams", kind="status", status=503, count=5)
        stream = (await creator_client.post("/api/streams", json=START)).json()["stream"]

        page = await creator_client.get(f"/influencer/streams/{stream['id']}")

        assert page.status_code == 200, page.text
        assert "HLS: did not start:" in page.text


class TestWithoutPublicUrl:
    @pytest.fixture
    def settings_overrides(self, emulator: EmulatorHandle) -> dict[str, Any]:
        return _hms_settings(emulator)

    async def test_goes_live_without_hls_and_says_why(
        self, creator_client: httpx.AsyncClient, emulator: EmulatorHandle
    ) -> None:
        response = await creator_client.post("/api/streams", json=START)

        assert response.status_code == 201, response.text
        stream = response.json()["stream"]
        assert stream["hls_status"] == "failed"
        assert "LIVESTAGE_PUBLIC_URL" in stream["hls_problem"]
        assert _live_streams(emulator, stream["room_id"]) == []


class TestLocalProvider:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"provider": "local"}

    async def test_hls_is_refused_and_nothing_starts(
        self, creator_client: httpx.AsyncClient
    ) -> None:
        response = await creator_client.post("/api/streams", json=START)

        assert response.status_code == 409
        assert response.json()["code"] == "hls_needs_100ms"
        assert "HLS needs 100ms" in response.json()["detail"]
        assert (await _current(creator_client)) is None

    async def test_the_form_does_not_offer_hls(self, creator_client: httpx.AsyncClient) -> None:
        page = await creator_client.get("/influencer/live")

        assert 'data-testid="start-form"' in page.text
        assert 'name="hls"' not in page.text

    async def test_without_hls_it_goes_live(self, creator_client: httpx.AsyncClient) -> None:
        response = await creator_client.post("/api/streams", json={**START, "hls": False})

        assert response.status_code == 201, response.text
