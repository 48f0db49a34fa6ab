"""The local provider end to end, in Chromium: real camera frames from an influencer's browser to
two viewers' browsers, with no 100ms account and nothing but loopback.

Chromium's fake camera and microphone (`--use-fake-device-for-media-stream`) produce a moving test
pattern and a tone; `--allow-loopback-in-peer-connection` lets WebRTC use 127.0.0.1, the only
interface in the test's network namespace. The app serves the pages, signals over its WebSocket
and turns the local provider's own lifecycle events into the stream's record, exactly as it does
with 100ms webhooks.

The pages are photographed for the README's walkthrough (`docs/screenshots/` when
LIVESTAGE_UPDATE_SCREENSHOTS=1, else a temporary directory).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Request, expect

from livestage.app import AppState
from livestage.db import transaction
from livestage.models import Influencer, LiveStream
from livestage.providers.local.protocol import (
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from livestage.providers.local.provider import LocalProvider
from tests.browser.pages import AdminLoginPage, InfluencerAdminPage, InfluencersPage
from tests.browser.test_broadcast_and_watch import GoLivePage, open_go_live
from tests.support.browser import isolated_page
from tests.support.fixtures import AdminAccount, InfluencerAccount, create_admin, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Chromium's autoplay policy depends on its flags and the site's history: in the first viewer's
# page, refuse unmuted play() the way a strict policy does.
REFUSE_UNMUTED_AUTOPLAY = """
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!this.muted) return Promise.reject(new DOMException("autoplay refused", "NotAllowedError"));
  return play.call(this);
};
"""
ENDED = "The stream “Sunday sketching” has ended. See who is live now."
# Viewers who never chatted, by a short form of their identity.
ANONYMOUS = re.compile(r"^Viewer \S{4}$")


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"provider": "local", "worker_poll_seconds": 0.2, "local_viewer_cap": 2}


@pytest.fixture
def admin(live_server: LiveServer) -> AdminAccount:
    return live_server.run(create_admin(live_server.ctx))


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    account = create_influencer(live_server.ctx, "alice", streaming_enabled=False)
    return live_server.run(account)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("LIVESTAGE_UPDATE_SCREENSHOTS") == "1":
        return SCREENSHOTS
    return tmp_path


async def enable_streaming(page: Page, server: LiveServer, admin: AdminAccount) -> None:
    login = AdminLoginPage(page, server.base_url)
    await login.open()
    await login.sign_in(admin.email, admin.password, admin.code(datetime.now(UTC)))
    influencers = InfluencersPage(page, server.base_url)
    await expect(influencers.streaming("alice")).to_have_text("Off")
    manage: InfluencerAdminPage = await influencers.manage("alice")
    await page.get_by_role("button", name="Enable streaming").click()
    await expect(manage.streaming_state).to_have_text("enabled")


async def plays_real_frames(page: Page) -> None:
    """The player shows decoded video (a size) and its clock runs (frames keep coming)."""
    player = "document.querySelector('#player')"
    await page.wait_for_function(f"() => {player} && {player}.videoWidth > 0", timeout=20_000)
    started = await page.evaluate(f"() => {player}.currentTime")
    await page.wait_for_function(
        f"(t) => {player}.currentTime > t + 1", arg=started, timeout=10_000
    )
    assert await page.evaluate(f"() => {player}.videoHeight") > 0


async def settled_stream(ctx: AppState, stream_id: str) -> LiveStream:
    """The stream's record once every provider event so far has been stored and applied."""
    assert isinstance(ctx.provider, LocalProvider) and ctx.ingestion.worker is not None
    await ctx.provider.hub.flush()
    await ctx.ingestion.worker.drain()
    async with transaction(ctx.database.sessionmaker) as session:
        found = await session.get(LiveStream, uuid.UUID(stream_id))
    assert found is not None
    return found


async def test_influencer_streams_real_video_to_two_viewers_with_the_local_provider(
    page: Page,
    browser: Browser,
    live_server: LiveServer,
    admin: AdminAccount,
    alice: InfluencerAccount,
    screenshots: Path,
) -> None:
    async with isolated_page(browser) as admin_page:
        await enable_streaming(admin_page, live_server, admin)

    live: GoLivePage = await open_go_live(page, live_server, alice)
    await live.start("Sunday sketching", "Drawing what you suggest")
    await expect(live.stage).to_be_visible()
    await expect(live.status).to_have_text("You are live: Sunday sketching")
    went_live = time.monotonic()
    stream = await live.current_stream()
    assert stream is not None and stream["provider"] == "local"
    # The preview is the camera itself, playing in the page.
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")

    async with isolated_page(browser) as first, isolated_page(browser) as second:
        await first.add_init_script(REFUSE_UNMUTED_AUTOPLAY)
        for viewer in (first, second):
            await viewer.goto(live_server.url("/watch/alice"))
        for viewer in (first, second):
            await plays_real_frames(viewer)
            await expect(viewer.get_by_test_id("watch-state")).to_have_text("Live")
        await expect(live.viewers).to_have_text("2")
        await expect(live.participants).to_have_text([ANONYMOUS, ANONYMOUS])
        await expect(first.get_by_test_id("viewers")).to_have_text("2")
        await page.screenshot(path=screenshots / "local-broadcast.png", full_page=True)
        await first.screenshot(path=screenshots / "local-watch.png", full_page=True)

        # Where the browser refuses sound nobody clicked for, the page plays muted and offers
        # Unmute.
        unmute = first.get_by_role("button", name="Unmute")
        await unmute.click()
        await expect(unmute).to_be_hidden()
        assert await first.evaluate("() => document.querySelector('#player').muted") is False

        # The cap is 2: a third viewer is told, kindly, that the stream is full.
        async with isolated_page(browser) as third:
            await third.goto(live_server.url("/watch/alice"))
            await expect(third.get_by_test_id("stream-full")).to_contain_text(
                "This stream is full."
            )
            await expect(third.get_by_test_id("player")).to_have_count(0)

        await second.close()
        await expect(live.viewers).to_have_text("1")
        await expect(live.participants).to_have_text([ANONYMOUS])
        await expect(first.get_by_test_id("viewers")).to_have_text("1")

        await live.end.click()
        ended_at = time.monotonic()
        await expect(live.status).to_have_text("Your stream has ended.")
        await expect(first.get_by_test_id("watch-state")).to_have_text(ENDED)
        await expect(first.get_by_test_id("player")).to_have_count(0)

    record = await live_server.arun(settled_stream(live_server.ctx, stream["id"]))
    assert record.status == "ended"
    assert (record.peak_viewers, record.unique_viewers, record.current_viewers) == (2, 2, 0)
    assert record.duration_seconds is not None
    assert abs(record.duration_seconds - (ended_at - went_live)) <= 3
    assert record.end_reason == "broadcaster"


async def drop_broadcaster(ctx: AppState, room_id: str, code: int) -> str:
    """Close the broadcaster's signalling connection from the server side; its peer id."""
    assert isinstance(ctx.provider, LocalProvider)
    hub = ctx.provider.hub
    (member,) = [m for m in await hub.members(room_id) if m.role == hub.broadcaster_role]
    member.close(code, "dropped by the test")
    return member.peer_id


async def broadcaster_peer(ctx: AppState, room_id: str) -> str | None:
    assert isinstance(ctx.provider, LocalProvider)
    hub = ctx.provider.hub
    found = [m.peer_id for m in await hub.members(room_id) if m.role == hub.broadcaster_role]
    return found[0] if found else None


async def test_a_dropped_signalling_connection_comes_back_and_the_video_goes_on(
    page: Page, browser: Browser, live_server: LiveServer, alice: InfluencerAccount
) -> None:
    await live_server.arun(enable(live_server.ctx, alice))
    go_live_posts: list[Request] = []

    def record_go_live(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/streams"):
            go_live_posts.append(request)

    page.on("request", record_go_live)
    live = await open_go_live(page, live_server, alice)
    await live.start("Night drive")
    await expect(live.status).to_have_text("You are live: Night drive")
    stream = await live.current_stream()
    assert stream is not None
    room_id = stream["room_id"]

    async with isolated_page(browser) as viewer:
        await viewer.goto(live_server.url("/watch/alice"))
        await plays_real_frames(viewer)
        # A network blip (1013): the page comes back with the same token. An expired or
        # refused token (4401): it fetches a fresh join from the server and comes back.
        for code in (CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED):
            before = await live_server.arun(drop_broadcaster(live_server.ctx, room_id, code))
            for _ in range(100):
                again = await live_server.arun(broadcaster_peer(live_server.ctx, room_id))
                if again not in (None, before):
                    break
                await asyncio.sleep(0.1)
            assert again not in (None, before), f"the broadcaster did not come back after {code}"
            await expect(live.status).to_have_text("You are live: Night drive")
            await plays_real_frames(viewer)
            await expect(viewer.get_by_test_id("watch-state")).to_have_text("Live")
        await expect(live.viewers).to_have_text("1")

    record = await live_server.arun(settled_stream(live_server.ctx, stream["id"]))
    assert record.status == "live"
    assert record.broadcaster_left_at is None
    # Start Streaming, then the fresh join after the refused token; the blip needed none.
    assert len(go_live_posts) == 2


async def enable(ctx: AppState, account: InfluencerAccount) -> None:
    async with transaction(ctx.database.sessionmaker) as session:
        found = await session.get(Influencer, account.id)
        assert found is not None
        found.streaming_enabled = True
