"""Viewer counts on open pages follow the server without a reload, in Chromium.

An influencer goes live through /influencer/live (the fake 100ms SDK in the page), a viewer has
/watch/alice open and an admin the stream's page. Simulated peers then join and leave the room
at the 100ms emulator, which sends real webhooks to the app; the app's worker turns them into
numbers and pushes them to the pages over SSE. Every page must show each count without a reload.

The app and the emulator share a clock that can run fast: once everyone is in place, one real
second is one minute, so the stream lasts long enough for a viewers-over-time chart worth a
look. The chart is then checked against the stream's peak and photographed for the docs
(`docs/screenshots/admin-stream.png` when LIVESTAGE_UPDATE_SCREENSHOTS=1, else a temp dir).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from livestage.app import AppState
from livestage.tracking.repository import EventRepository
from tests.browser.pages import AdminLoginPage
from tests.browser.test_broadcast_and_watch import (
    FAKE_SDK,
    SDK_URL,
    FakeSdk,
    GoLivePage,
    go_live,
    hms_settings,
    open_go_live,
)
from tests.support.browser import isolated_page, replace_module
from tests.support.emulator import EmulatorHandle, StartEmulator
from tests.support.fixtures import AdminAccount, create_admin, create_influencer
from tests.support.live_server import LiveServer, LiveServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FAST = 60.0  # one real second is one minute of stream time
ENDED = "The stream “Late night set” has ended. See who is live now."


class FastForwardClock:
    """UTC now, running `speed` times faster than the wall clock from the last speed change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base, self._since, self._speed = datetime.now(UTC), time.monotonic(), 1.0

    def __call__(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._since) * self._speed
            return self._base + timedelta(seconds=elapsed)

    def set_speed(self, speed: float) -> None:
        now = self()
        with self._lock:
            self._base, self._since, self._speed = now, time.monotonic(), speed


@pytest.fixture
def fast_clock() -> FastForwardClock:
    return FastForwardClock()


@pytest.fixture
def fast_emulator(start_emulator: StartEmulator, fast_clock: FastForwardClock) -> EmulatorHandle:
    return start_emulator(clock=fast_clock)


@pytest_asyncio.fixture(loop_scope="session")
async def server(
    live_server_factory: LiveServerFactory,
    fast_emulator: EmulatorHandle,
    fast_clock: FastForwardClock,
) -> LiveServer:
    settings = hms_settings(fast_emulator, worker_poll_seconds=0.2)
    # In a thread: building the server's database runs an event loop of its own.
    return await asyncio.to_thread(live_server_factory, settings, clock=fast_clock)


# Pages -------------------------------------------------------------------------------------


class NoReload:
    """Fails if the page navigates again after `arm()` (counts must change in place)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.navigations: list[str] = []
        page.on("framenavigated", self._on_navigated)

    def _on_navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations.append(frame.url)

    async def arm(self) -> None:
        self.navigations.clear()
        await self.page.evaluate("() => { window.__sameDocument = true; }")

    async def check(self) -> None:
        assert self.navigations == [], f"{self.page.url} navigated: {self.navigations}"
        assert await self.page.evaluate("() => window.__sameDocument === true")


class WatchPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.sdk = FakeSdk(page)
        self.state = page.get_by_test_id("watch-state")
        self.viewers = page.get_by_test_id("viewers")
        self.player = page.locator("#player")
        self.went_live = page.get_by_test_id("went-live")


class StreamAdminPage:
    """/admin/streams/{id}."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.status = page.get_by_test_id("stream-status")
        self.ended_notice = page.get_by_test_id("ended-notice")
        self.chart = page.locator("svg.viewers-chart")
        self.chart_max = self.chart.locator("g.chart-max")
        self.participants = page.get_by_test_id("participants").locator("tbody tr")

    def stat(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"stat-{name}")


async def admin_sign_in(page: Page, server: LiveServer, admin: AdminAccount, now: datetime) -> None:
    login = AdminLoginPage(page, server.base_url)
    await login.open()
    await login.sign_in(admin.email, admin.password, admin.code(now))
    await expect(page).to_have_url(server.url("/admin/influencers"))


async def unprocessed_events(ctx: AppState) -> int:
    async with ctx.database.sessionmaker() as session:
        return await EventRepository(session).count(processed=False)


async def settled(server: LiveServer, emulator: EmulatorHandle) -> None:
    """Every webhook delivered by the emulator and applied by the app's worker."""
    await asyncio.to_thread(emulator.control.wait_for_deliveries)
    deadline = time.monotonic() + 10
    while await server.arun(unprocessed_events(server.ctx)):
        assert time.monotonic() < deadline, "the worker did not apply every webhook"
        await asyncio.sleep(0.1)


def minutes(text: str) -> float:
    parts = [int(p) for p in text.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    return seconds / 60


@pytest_asyncio.fixture(loop_scope="session")
async def three_people(browser: Browser) -> AsyncIterator[tuple[Page, Page, Page]]:
    """The influencer, a viewer and an admin: each a page with cookies of its own. Closed at
    the end of the test, before the server stops, so no live connection outlives it."""
    async with (
        isolated_page(browser) as studio,
        isolated_page(browser) as viewer,
        isolated_page(browser) as admin,
    ):
        yield studio, viewer, admin


async def test_viewer_counts_and_the_end_reach_open_pages_without_reload(
    server: LiveServer,
    fast_emulator: EmulatorHandle,
    fast_clock: FastForwardClock,
    three_people: tuple[Page, Page, Page],
    tmp_path: Path,
) -> None:
    emulator = fast_emulator
    studio_page, viewer_page, admin_page = three_people
    alice = server.run(create_influencer(server.ctx, "alice"))
    admin = server.run(create_admin(server.ctx))
    errors: list[str] = []
    for page in three_people:
        page.on("pageerror", lambda error: errors.append(str(error)))

    # A viewer waits on Alice's watch page; Alice goes live from hers; the viewer is told.
    await replace_module(viewer_page, SDK_URL, FAKE_SDK)
    await viewer_page.goto(server.url("/watch/alice"))
    watch = WatchPage(viewer_page)
    await expect(watch.state).to_have_text("@alice is offline right now. Check who is live.")
    waiting = NoReload(viewer_page)
    await waiting.arm()
    await replace_module(studio_page, SDK_URL, FAKE_SDK)
    studio: GoLivePage = await open_go_live(studio_page, server, alice)
    stream = await go_live(studio, "Late night set", "Slow songs")
    room_id = stream["room_id"]
    ((host_join,),) = await studio.sdk.calls("join")
    await expect(watch.went_live).to_have_text("@alice is live now: “Late night set”. Watch now")
    await waiting.check()
    await watch.went_live.get_by_role("link", name="Watch now").click()
    await expect(viewer_page.get_by_role("heading", level=2)).to_have_text("Late night set")
    await watch.sdk.wait_for_join()
    ((viewer_join,),) = await watch.sdk.calls("join")

    # The admin has the stream's page open.
    await admin_sign_in(admin_page, server, admin, fast_clock())
    await admin_page.goto(server.url(f"/admin/streams/{stream['id']}"))
    stats = StreamAdminPage(admin_page)
    await expect(stats.status).to_have_text("live")
    await expect(stats.stat("current")).to_have_text("0")

    await expect(studio.viewers).to_have_text("0")
    await expect(watch.viewers).to_have_text("1")  # this viewer, as its SDK sees the room
    await expect(watch.state).to_have_text("Waiting for the stream to start…")
    pages = [NoReload(p) for p in three_people]
    for page_guard in pages:
        await page_guard.arm()

    async def counts_are(expected: str) -> None:
        await expect(studio.viewers).to_have_text(expected)
        await expect(watch.viewers).to_have_text(expected)
        await expect(stats.stat("current")).to_have_text(expected)

    # From here on one real second is a minute of the stream.
    fast_clock.set_speed(FAST)
    control = emulator.control
    control.join_peer(room_id, token=host_join["authToken"], name="Alice")
    control.join_peer(room_id, token=viewer_join["authToken"], name="Watch page")
    await counts_are("1")
    await asyncio.sleep(2)
    bea = control.join_peer(room_id, user_id="viewer-bea", role="viewer", name="Bea")
    await counts_are("2")
    await asyncio.sleep(2)
    carl = control.join_peer(room_id, user_id="viewer-carl", role="viewer", name="Carl")
    await counts_are("3")
    await expect(stats.stat("peak")).to_have_text("3")
    await asyncio.sleep(3)
    control.leave_peer(room_id, bea["id"])
    await counts_are("2")
    await asyncio.sleep(2)
    control.leave_peer(room_id, carl["id"])
    await counts_are("1")
    await asyncio.sleep(1)
    assert await studio.participants.count() == 0, "the SDK's own list is kept as it was"

    # Alice ends: the watch page and the admin page learn it from the server.
    await studio.end.click()
    await expect(studio.status).to_have_text("Your stream has ended.")
    await expect(watch.state).to_have_text(ENDED)
    await expect(watch.player).to_have_count(0)
    await expect(stats.status).to_have_text("ended")
    await expect(stats.ended_notice).to_be_visible()
    for page_guard in pages:
        await page_guard.check()
    assert await watch.sdk.calls("leave") == [[]], "the viewer left the ended room"
    fast_clock.set_speed(1)

    # The final numbers, once the provider's last webhooks are in.
    await settled(server, emulator)
    await admin_page.reload()
    await expect(stats.status).to_have_text("ended")
    await expect(stats.stat("peak")).to_have_text("3")
    await expect(stats.stat("unique")).to_have_text("3")
    await expect(stats.stat("current")).to_have_count(0)
    await expect(stats.participants).to_have_count(4)
    await expect(stats.chart).to_be_visible()
    await expect(stats.chart_max).to_have_attribute("data-value", "3")
    await expect(stats.chart_max.locator("text")).to_have_text("3")
    assert minutes(await stats.stat("duration").inner_text()) >= 10
    points = int(await stats.chart.get_attribute("data-points") or 0)
    assert points >= 10, "one point per minute of the stream"
    labels = await stats.chart.locator("g.x-axis text").all_text_contents()
    assert labels and all(re.fullmatch(r"\d\d:\d\d", label) for label in labels)

    target = SCREENSHOTS if os.environ.get("LIVESTAGE_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    shot = await admin_page.screenshot(path=str(target / "admin-stream.png"), full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []
