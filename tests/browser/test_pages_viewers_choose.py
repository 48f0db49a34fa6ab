"""The pages a viewer meets, in Chromium with the local provider and the fake camera: the
directory of live streams (/live and home) with a picture of each stream, counts that follow
joins and a card for a stream that starts while the directory is open; the watch page's LIVE
badge and elapsed time; the broadcaster's page; and all of them on a phone (390 x 844: stacked,
nothing wider than the screen).

Screenshots for the README (`docs/screenshots/` when LIVESTAGE_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.browser.test_broadcast_and_watch import GoLivePage, open_go_live
from tests.browser.test_local_video import SCREENSHOTS, enable, plays_real_frames
from tests.support.browser import isolated_page
from tests.support.fixtures import InfluencerAccount, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"provider": "local", "worker_poll_seconds": 0.2}


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    account = live_server.run(create_influencer(live_server.ctx, "alice"))
    live_server.run(enable(live_server.ctx, account))
    return account


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("LIVESTAGE_UPDATE_SCREENSHOTS") == "1":
        return SCREENSHOTS
    return tmp_path


async def fits_the_screen(page: Page) -> None:
    """Nothing on the page is wider than the viewport: no scrolling sideways."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide on a {width} px screen"


async def test_directory_watch_page_and_phone_layouts(
    page: Page,
    browser: Browser,
    live_server: LiveServer,
    alice: InfluencerAccount,
    screenshots: Path,
) -> None:
    await page.set_viewport_size(DESKTOP)
    async with isolated_page(browser) as visitor, isolated_page(browser) as viewer:
        # The directory is open before Alice goes live: her card comes without a reload.
        await visitor.set_viewport_size(DESKTOP)
        await visitor.goto(live_server.url("/live"))
        await expect(visitor.get_by_test_id("live-list")).to_have_text(
            "Nobody is live right now. Come back soon."
        )
        live: GoLivePage = await open_go_live(page, live_server, alice)
        await live.start("Morning pottery", "Throwing bowls, <b>questions welcome</b>")
        await expect(live.status).to_have_text("You are live: Morning pottery")
        card = visitor.get_by_test_id("stream-card")
        await expect(card).to_have_count(1, timeout=15_000)
        await expect(card.get_by_test_id("card-title")).to_have_text("Morning pottery")
        await expect(card).to_contain_text("Alice @alice")
        await expect(card.get_by_test_id("card-viewers")).to_have_text("0 watching")
        await expect(card.get_by_test_id("card-since")).to_have_count(1)
        # The broadcaster's page sends a still every few seconds: the card shows it.
        picture = card.get_by_test_id("card-picture")
        await expect(picture).to_be_visible(timeout=15_000)
        assert await picture.evaluate("(img) => img.naturalWidth") == 320

        # A viewer joins: the card's count follows without a reload.
        await viewer.set_viewport_size(DESKTOP)
        await viewer.goto(live_server.url("/watch/alice"))
        await plays_real_frames(viewer)
        await expect(card.get_by_test_id("card-viewers")).to_have_text("1 watching")
        await expect(viewer.get_by_test_id("live-badge")).to_have_text("LIVE")
        await expect(viewer.get_by_role("heading", name="Morning pottery")).to_be_visible()
        # The description is text, markup included.
        await expect(viewer.get_by_text("Throwing bowls, <b>questions welcome</b>")).to_be_visible()
        elapsed = viewer.get_by_test_id("elapsed")
        await expect(elapsed).to_have_text(re.compile(r"^\d+:\d\d$"))
        before = await elapsed.text_content()
        await expect(elapsed).not_to_have_text(before or "", timeout=3000)
        await expect(live.participants).to_have_count(1)
        await expect(live.participants).to_have_text([re.compile(r"^Viewer \S{4}$")])
        await visitor.screenshot(path=screenshots / "live-directory.png", full_page=True)

        # Home lists the same card.
        await visitor.goto(live_server.url("/"))
        await expect(visitor.get_by_test_id("card-title")).to_have_text("Morning pottery")

        # On a phone every page stacks and fits.
        for each in (page, visitor, viewer):
            await each.set_viewport_size(PHONE)
        for path in ("/", "/live"):
            await visitor.goto(live_server.url(path))
            await fits_the_screen(visitor)
        await fits_the_screen(viewer)
        await fits_the_screen(page)
        chat_box = await viewer.get_by_test_id("chat").bounding_box()
        player_box = await viewer.get_by_test_id("player").bounding_box()
        assert chat_box and player_box and chat_box["y"] >= player_box["y"] + player_box["height"]
        preview = await page.locator("#preview").bounding_box()
        assert preview and preview["width"] >= 300, "the preview takes the phone's width"
        await page.screenshot(path=screenshots / "broadcast-phone.png", full_page=True)

        # The stream ends: the card leaves the directory, and the watch page links to /live.
        await live.end.click()
        await visitor.goto(live_server.url("/live"))
        await expect(visitor.get_by_test_id("live-list")).to_have_text(
            "Nobody is live right now. Come back soon."
        )
        await expect(viewer.get_by_test_id("watch-state")).to_have_text(
            "The stream “Morning pottery” has ended. See who is live now."
        )
        await viewer.get_by_role("link", name="who is live now").click()
        await expect(viewer).to_have_url(live_server.url("/live"))
