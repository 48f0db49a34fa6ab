"""The Start Streaming form's HLS option in Chromium, on the 100ms path (emulator, fake SDK):
ticked, HLS starts with the live server's watch page and its event reaches the record; when
100ms refuses, the creator is live anyway and told why."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_broadcast_and_watch import (
    FAKE_SDK,
    SDK_URL,
    go_live,
    hms_settings,
    open_go_live,
)
from tests.support.browser import replace_module
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import InfluencerAccount, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def live_server_settings(emulator: EmulatorHandle) -> dict[str, Any]:
    return hms_settings(emulator)


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    return live_server.run(create_influencer(live_server.ctx, "alice"))


def _live_streams(emulator: EmulatorHandle, room_id: str) -> list[dict[str, Any]]:
    with emulator.api() as api:
        found: list[dict[str, Any]] = api.get("/live-streams", params={"room_id": room_id}).json()[
            "data"
        ]
    return found


async def test_ticked_hls_starts_with_the_watch_page_and_runs(
    page: Page, live_server: LiveServer, emulator: EmulatorHandle, alice: InfluencerAccount
) -> None:
    await replace_module(page, SDK_URL, FAKE_SDK)
    live = await open_go_live(page, live_server, alice)
    await live.start_form.get_by_test_id("hls-option").check()

    stream = await go_live(live, "With HLS")

    (started,) = _live_streams(emulator, stream["room_id"])
    assert started["meeting_url"] == live_server.url("/watch/alice")
    # The emulator's hls.started.success reaches livestage over loopback.
    for _ in range(100):
        current = await live.current_stream()
        if current and current["hls_status"] == "running":
            break
        await page.wait_for_timeout(50)
    assert current and current["hls_status"] == "running"
    assert current["hls_url"] == started["playback"]["url"]
    await expect(live.problem).to_be_hidden()


async def test_hls_failing_goes_live_and_says_why(
    page: Page, live_server: LiveServer, emulator: EmulatorHandle, alice: InfluencerAccount
) -> None:
    emulator.control.queue_fault("/v2/live-streams", kind="status", status=503, count=10)
    await replace_module(page, SDK_URL, FAKE_SDK)
    live = await open_go_live(page, live_server, alice)
    await live.start_form.get_by_test_id("hls-option").check()

    stream = await go_live(live, "With HLS")

    assert stream["hls_status"] == "failed"
    await expect(live.problem).to_contain_text("HLS did not start:")
    await expect(live.problem).to_contain_text("503")
