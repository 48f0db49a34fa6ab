"""The chat beside the stream, in Chromium with the local provider and the fake camera: an
influencer and two viewers chat (each message on all three pages within 1 s, in the same order),
the history after a reload, markup shown as text, slow mode, the rate limit, a time-out, a
deleted message gone everywhere, and a ban that stops the viewer's video and holds across a
reload, a new tab and a new join.

Screenshots for the README (`docs/screenshots/` when LIVESTAGE_UPDATE_SCREENSHOTS=1): the watch
page with its chat on a desktop and on a phone."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.pages import AdminLoginPage
from tests.browser.test_broadcast_and_watch import GoLivePage, open_go_live
from tests.browser.test_local_video import SCREENSHOTS, enable, plays_real_frames
from tests.support.browser import isolated_page
from tests.support.fixtures import InfluencerAccount, create_admin, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Every page shows a message within this long of its author pressing Send (SPEC §8).
FAN_OUT_MS = 1000
MARKUP = '<b>bold</b><img src=x onerror="window.__injected=1">'


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


class Chat:
    """The chat panel of one page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.get_by_test_id("chat")
        self.bodies = page.get_by_test_id("chat-body")
        self.notice = page.get_by_test_id("chat-notice")
        self.name = page.get_by_test_id("chat-name")
        self.input = page.get_by_test_id("chat-input")

    async def send(self, text: str, name: str | None = None) -> None:
        if name is not None:
            await self.name.fill(name)
        await self.input.fill(text)
        await self.panel.get_by_role("button", name="Send").click()

    def message(self, text: str) -> Locator:
        return self.page.get_by_test_id("chat-message").filter(has_text=text)


async def post_status(page: Page, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST from the page itself (its cookies, its CSRF token): as a new token or a script
    would, bypassing the form."""
    result: dict[str, Any] = await page.evaluate(
        """async ([path, body]) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
                headers: {"content-type": "application/json", "x-csrf-token": csrf}});
            return {status: r.status, body: await r.json().catch(() => ({}))};
        }""",
        [path, body],
    )
    return result


async def test_influencer_and_two_viewers_chat_and_moderate(
    page: Page,
    browser: Browser,
    live_server: LiveServer,
    alice: InfluencerAccount,
    screenshots: Path,
) -> None:
    await page.set_viewport_size({"width": 1280, "height": 860})
    live: GoLivePage = await open_go_live(page, live_server, alice)
    await live.start("Chat night")
    await expect(live.status).to_have_text("You are live: Chat night")
    host = Chat(page)
    await expect(page.get_by_test_id("chat-moderation")).to_be_visible()

    async with isolated_page(browser) as bea_page, isolated_page(browser) as carl_page:
        for viewer in (bea_page, carl_page):
            await viewer.set_viewport_size({"width": 1280, "height": 860})
            await viewer.goto(live_server.url("/watch/alice"))
            await plays_real_frames(viewer)
        bea, carl = Chat(bea_page), Chat(carl_page)
        everyone = (host, bea, carl)
        # Viewers are not moderators.
        await expect(bea_page.get_by_test_id("chat-moderation")).to_be_hidden()

        # Three messages, each on every page within a second, in one order everywhere.
        sent: list[str] = []
        for chat, text, name in (
            (bea, "hello from Bea", "Bea"),
            (carl, MARKUP, "Carl"),
            (host, "welcome, both of you", None),
        ):
            await chat.send(text, name)
            sent.append(text)
            for other in everyone:
                await expect(other.bodies).to_have_text(sent, timeout=FAN_OUT_MS)
        # Markup is text: nothing of it became an element or ran.
        for chat in everyone:
            assert await chat.panel.locator("b, img").count() == 0
            assert await chat.page.evaluate("() => window.__injected") is None
        await expect(host.message("welcome").locator(".chat-role")).to_have_text("creator")
        # The broadcaster sees its viewers by the names they chat under.
        await expect(live.participants).to_have_count(2)
        assert sorted(await live.participants.all_text_contents()) == ["Bea", "Carl"]

        # The history after a reload; the name is remembered, not asked again.
        await bea_page.reload()
        await expect(bea.bodies).to_have_text(sent)
        await expect(bea.name).to_be_hidden()
        await plays_real_frames(bea_page)
        await expect(bea_page.get_by_test_id("viewers")).to_have_text("2")
        await bea_page.screenshot(path=screenshots / "watch-chat.png")
        await bea_page.set_viewport_size({"width": 390, "height": 844})
        width = await bea_page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        await bea_page.screenshot(path=screenshots / "watch-chat-phone.png", full_page=True)
        await bea_page.set_viewport_size({"width": 1280, "height": 860})

        # The list follows new messages, unless the reader scrolled up to read older ones.
        listing = carl_page.get_by_test_id("chat-messages")
        await listing.evaluate(
            "(el) => { el.style.height = '60px'; el.scrollTop = el.scrollHeight; }"
        )
        at_end = "(el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 40"
        await host.send("follow along")
        await expect(carl.bodies.last).to_have_text("follow along")
        assert await listing.evaluate(at_end)
        await listing.evaluate("(el) => { el.scrollTop = 0; }")
        await host.send("while Carl reads back")
        await expect(carl.bodies.last).to_have_text("while Carl reads back")
        assert await listing.evaluate("(el) => el.scrollTop") == 0
        await carl_page.get_by_role("button", name="New messages ↓").click()
        assert await listing.evaluate(at_end)
        await expect(carl_page.get_by_role("button", name="New messages ↓")).to_be_hidden()

        # Slow mode: one message per viewer every 30 s (Bea wrote seconds ago; the creator is
        # not held).
        await page.get_by_test_id("chat-slow-mode").select_option("30")
        await expect(bea_page.get_by_test_id("chat-slow")).to_have_text(
            "Slow mode: one message every 30 s"
        )
        await bea.send("too soon under slow mode")
        await expect(bea.notice).to_have_text(
            re.compile(r"^Slow mode is on\. Try again in \d+ s\.$")
        )
        assert "too soon under slow mode" not in await host.bodies.all_text_contents()
        await host.send("creators are not slowed")
        await expect(bea.bodies.last).to_have_text("creators are not slowed")
        await page.get_by_test_id("chat-slow-mode").select_option("0")
        await expect(bea_page.get_by_test_id("chat-slow")).to_be_hidden()

        # The rate limit: at most five messages in ten seconds, whatever sends them.
        answers = [
            await post_status(
                bea_page, "/api/watch/alice/chat", {"body": f"burst {n}", "name": "Bea"}
            )
            for n in range(6)
        ]
        codes = [a["body"].get("code") for a in answers if a["status"] != 201]
        assert codes and set(codes) == {"chat_rate_limited"}, answers
        await bea.send("one too many")
        await expect(bea.notice).to_have_text(
            re.compile(r"^You are sending messages too fast\. Try again in \d+ s\.$")
        )
        await expect(carl.bodies.last).to_have_text(re.compile(r"^burst \d$"))
        assert "one too many" not in await carl.bodies.all_text_contents()

        # Delete: gone from every page.
        await host.message("hello from Bea").get_by_role("button", name="Delete").click()
        for chat in everyone:
            await expect(chat.message("hello from Bea")).to_have_count(0, timeout=FAN_OUT_MS)

        # A time-out: Carl is told, and the server refuses his messages (not only his page).
        await page.get_by_test_id("chat-timeout-minutes").select_option("5")
        await host.message("bold").get_by_role("button", name="Time out").click()
        await expect(carl.notice).to_contain_text("You are timed out")
        await carl.send("am I still here?")
        refused = await post_status(
            carl_page, "/api/watch/alice/chat", {"body": "now?", "name": "Carl"}
        )
        assert (refused["status"], refused["body"]["code"]) == (403, "chat_timed_out")
        assert "am I still here?" not in await host.bodies.all_text_contents()
        await expect(carl_page.get_by_test_id("player")).to_have_count(1)  # still watching

        # A ban: Carl's video stops, and neither a reload, a new tab nor a new join brings it back.
        await host.message("bold").get_by_role("button", name="Ban").click()
        await expect(carl_page.get_by_test_id("player")).to_have_count(0)
        await expect(carl_page.get_by_test_id("watch-state")).to_contain_text("banned")
        await expect(live.viewers).to_have_text("1")
        await expect(live.participants).to_have_text(["Bea"])
        await carl_page.reload()
        await expect(carl_page.get_by_test_id("watch-state")).to_contain_text("banned")
        await expect(carl_page.get_by_test_id("player")).to_have_count(0)
        another_tab = await carl_page.context.new_page()
        await another_tab.goto(live_server.url("/watch/alice"))
        await expect(another_tab.get_by_test_id("watch-state")).to_contain_text("banned")
        await expect(another_tab.get_by_test_id("player")).to_have_count(0)
        join = await post_status(another_tab, "/api/watch/alice/join", {})
        assert (join["status"], join["body"]["code"]) == (403, "banned")
        await expect(live.viewers).to_have_text("1")
        # Bea watches on.
        await plays_real_frames(bea_page)


async def test_an_admin_moderates_the_chat_from_the_streams_page(
    browser: Browser, live_server: LiveServer, alice: InfluencerAccount
) -> None:
    admin = live_server.run(create_admin(live_server.ctx))
    async with (
        isolated_page(browser) as studio,
        isolated_page(browser) as viewer,
        isolated_page(browser) as ops,
    ):
        live: GoLivePage = await open_go_live(studio, live_server, alice)
        await live.start("Admin watch")
        await expect(live.status).to_have_text("You are live: Admin watch")
        stream = await live.current_stream()
        assert stream is not None

        await viewer.goto(live_server.url("/watch/alice"))
        seen_by_viewer = Chat(viewer)
        await seen_by_viewer.send("spam spam spam", name="Mallory")
        await expect(seen_by_viewer.message("spam spam spam")).to_have_count(1)

        login = AdminLoginPage(ops, live_server.base_url)
        await login.open()
        await login.sign_in(admin.email, admin.password, admin.code(datetime.now(UTC)))
        await ops.goto(live_server.url(f"/admin/streams/{stream['id']}"))
        moderator = Chat(ops)
        await expect(moderator.message("spam spam spam")).to_have_count(1)
        await expect(ops.get_by_test_id("chat-moderation")).to_be_visible()

        await moderator.message("spam spam spam").get_by_role("button", name="Delete").click()
        for page in (ops, viewer, studio):
            await expect(Chat(page).message("spam spam spam")).to_have_count(0)
