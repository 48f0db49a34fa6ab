"""The chat and the directory across three processes, in Chromium (local provider, fake camera,
loopback only): the influencer's page on process A, one viewer's page on B, another's on C.
Each message reaches all three pages within 1 s, in one order; the picture A's broadcaster page
sends shows on a directory card served by C; a ban decided on A stops the video of the viewer
watching through C."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.browser.test_chat_pages import FAN_OUT_MS, Chat
from tests.browser.test_local_video import plays_real_frames
from tests.cluster.conftest import Cluster, local_cluster, running
from tests.cluster.test_local_cluster_video import sign_in_and_go_live
from tests.support.app_process import seed_influencer
from tests.support.browser import browser, isolated_page

__all__ = ["browser"]

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.postgres,
    pytest.mark.cluster,
    pytest.mark.browser,
]


@pytest_asyncio.fixture(loop_scope="session")
async def processes(
    tmp_path: Path, cluster_database: str, redis_url: str
) -> AsyncIterator[Cluster]:
    async with running(local_cluster(tmp_path, cluster_database, redis_url), 3) as cluster:
        yield cluster


async def test_chat_and_directory_across_processes(browser: Browser, processes: Cluster) -> None:
    a, b, c = processes.processes
    alice = await seed_influencer(processes.database_url, "alice")
    async with (
        isolated_page(browser) as host_page,
        isolated_page(browser) as on_b,
        isolated_page(browser) as on_c,
        isolated_page(browser) as directory,
    ):
        await sign_in_and_go_live(host_page, a.base_url, alice.email, alice.password)
        await on_b.goto(f"{b.base_url}/watch/alice")
        await on_c.goto(f"{c.base_url}/watch/alice")
        for viewer in (on_b, on_c):
            await plays_real_frames(viewer)
        host, bea, carl = Chat(host_page), Chat(on_b), Chat(on_c)

        sent: list[str] = []
        for chat, text, name in (
            (bea, "from B", "Bea"),
            (carl, "from C", "Carl"),
            (host, "from A", None),
            (bea, "B again", None),
        ):
            await chat.send(text, name)
            sent.append(text)
            for other in (host, bea, carl):
                await expect(other.bodies).to_have_text(sent, timeout=FAN_OUT_MS)

        # The still sent through A is the card's picture on C.
        await directory.goto(f"{c.base_url}/live")
        picture = directory.get_by_test_id("card-picture")
        await expect(picture).to_be_visible(timeout=15_000)
        await expect(directory.get_by_test_id("card-viewers")).to_have_text("2 watching")

        # A ban on A: C's viewer leaves the room, told why.
        await host.message("from C").get_by_role("button", name="Ban").click()
        await expect(on_c.get_by_test_id("player")).to_have_count(0)
        await expect(on_c.get_by_test_id("watch-state")).to_contain_text("banned")
        await expect(directory.get_by_test_id("card-viewers")).to_have_text("1 watching")
        await on_c.reload()
        await expect(on_c.get_by_test_id("watch-state")).to_contain_text("banned")
        await plays_real_frames(on_b)
