"""The local provider across three processes, in Chromium (fake camera, loopback only): the
broadcaster reaches process A through a fail-over proxy, viewers open their pages on B and C.
Frames flow browser to browser while the signalling crosses processes through Redis; the cap
holds across processes; a viewer leaving never ends the stream; and when A is killed, the
broadcaster's page reconnects through B, the viewers keep their frames and the stream stays live
with a true record."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from livestage.models import StreamStatus
from tests.browser.test_broadcast_and_watch import GoLivePage
from tests.browser.test_local_video import plays_real_frames
from tests.cluster.conftest import Cluster, local_cluster, running
from tests.support.app_process import (
    StoredStream,
    read_stream,
    seed_influencer,
)
from tests.support.browser import browser, isolated_page
from tests.support.tcp_proxy import FailoverProxy

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
    cluster = local_cluster(
        tmp_path,
        cluster_database,
        redis_url,
        local_viewer_cap=2,
        reconcile_interval_seconds=2,
        leader_ttl_seconds=1,
    )
    async with running(cluster, 3) as started:
        yield started


async def sign_in_and_go_live(page: Page, base_url: str, email: str, password: str) -> GoLivePage:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{base_url}/influencer/live")
    live = GoLivePage(page)
    await live.start("Across processes")
    await expect(live.status).to_have_text("You are live: Across processes")
    return live


async def stream_status(cluster: Cluster, stream_id: str) -> str:
    return (await read_stream(cluster.database_url, uuid.UUID(stream_id))).status


async def test_broadcaster_on_one_process_viewers_on_others_and_a_killed_process(
    browser: Browser, processes: Cluster
) -> None:
    a, b, c = processes.processes
    alice = await seed_influencer(processes.database_url, "alice")
    proxy = await FailoverProxy([a.port, b.port, c.port]).start()
    try:
        async with (
            isolated_page(browser) as host_page,
            isolated_page(browser) as on_b,
            isolated_page(browser) as on_c,
        ):
            live = await sign_in_and_go_live(host_page, proxy.base_url, alice.email, alice.password)
            stream = await live.current_stream()
            assert stream is not None and stream["provider"] == "local"

            await on_b.goto(f"{b.base_url}/watch/alice")
            await on_c.goto(f"{c.base_url}/watch/alice")
            for viewer in (on_b, on_c):
                await plays_real_frames(viewer)
            await expect(live.viewers).to_have_text("2")

            # The cap (2) counts the viewers of every process.
            async with isolated_page(browser) as third:
                await third.goto(f"{a.base_url}/watch/alice")
                await expect(third.get_by_test_id("stream-full")).to_contain_text(
                    "This stream is full."
                )

            # A viewer leaving (here the one on C) never ends the stream.
            await on_c.close()
            await expect(live.viewers).to_have_text("1")
            await asyncio.sleep(3)
            assert await stream_status(processes, stream["id"]) == StreamStatus.live
            await expect(live.status).to_have_text("You are live: Across processes")

            async with isolated_page(browser) as again_on_c:
                await again_on_c.goto(f"{c.base_url}/watch/alice")
                await plays_real_frames(again_on_c)
                await expect(live.viewers).to_have_text("2")

                # The broadcaster's process dies: its page reconnects through B.
                a.kill()
                await expect(live.status).to_have_text(
                    "You are live: Across processes", timeout=20_000
                )
                for viewer in (on_b, again_on_c):
                    await plays_real_frames(viewer)
                    await expect(viewer.get_by_test_id("watch-state")).to_have_text(
                        "Live", timeout=20_000
                    )
                await expect(live.viewers).to_have_text("2", timeout=20_000)
                # Past the dead process's heartbeat and a reconciler run: still live.
                await asyncio.sleep(8)
                assert await stream_status(processes, stream["id"]) == StreamStatus.live
                for viewer in (on_b, again_on_c):
                    await plays_real_frames(viewer)

                await live.end.click()
                await expect(live.status).to_have_text("Your stream has ended.")
                await expect(on_b.get_by_test_id("player")).to_have_count(0)

        record = await _settled(processes, stream["id"])
        assert record.status == StreamStatus.ended
        assert record.end_reason == "broadcaster"
        # Two broadcaster connections: the one through A, and the one through B after A died.
        assert len([peer for peer in record.peers if peer[2] == "broadcaster"]) == 2
        facts = record.facts
        assert (facts["peak_viewers"], facts["unique_viewers"], facts["current_viewers"]) == (
            2,
            3,
            0,
        )
    finally:
        await proxy.stop()


async def _settled(cluster: Cluster, stream_id: str, timeout: float = 15.0) -> StoredStream:
    async with asyncio.timeout(timeout):
        while True:
            record = await read_stream(cluster.database_url, uuid.UUID(stream_id))
            if record.status == StreamStatus.ended and record.facts["current_viewers"] == 0:
                return record
            await asyncio.sleep(0.2)
