"""SPEC §4 in Chromium: a viewer has one identity across reloads and tabs (the signed anonymous
viewer cookie), so one person who reloads twice and opens a second tab is one viewer: unique 1,
peak 1, and watch time the union of their connected time, never the sum over tabs."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from livestage.app import AppState
from livestage.db import transaction
from livestage.models import StreamPeer
from livestage.streams.viewers import VIEWER_COOKIE
from tests.browser.test_broadcast_and_watch import go_live, open_go_live
from tests.browser.test_local_video import plays_real_frames, settled_stream
from tests.support.browser import isolated_page
from tests.support.fixtures import InfluencerAccount, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
# Both tabs are open together this long, so counting tabs would show in every figure.
OVERLAP_SECONDS = 4.0


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"provider": "local", "worker_poll_seconds": 0.2, "local_viewer_cap": 4}


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    return live_server.run(create_influencer(live_server.ctx, "alice"))


async def viewer_peers(ctx: AppState, stream_id: str) -> list[StreamPeer]:
    async with transaction(ctx.database.sessionmaker) as session:
        rows = await session.scalars(
            select(StreamPeer)
            .where(StreamPeer.stream_id == uuid.UUID(stream_id), ~StreamPeer.is_broadcaster)
            .order_by(StreamPeer.joined_at)
        )
        return list(rows)


def union_seconds(peers: list[StreamPeer]) -> float:
    """The length of the union of closed intervals, merged by hand."""
    total, current = timedelta(), None
    for peer in peers:
        assert peer.joined_at is not None and peer.left_at is not None
        if current is not None and peer.joined_at <= current[1]:
            current = (current[0], max(current[1], peer.left_at))
            continue
        if current is not None:
            total += current[1] - current[0]
        current = (peer.joined_at, peer.left_at)
    if current is not None:
        total += current[1] - current[0]
    return total.total_seconds()


async def test_one_viewer_who_reloads_twice_and_opens_a_second_tab_counts_once(
    page: Page, browser: Browser, live_server: LiveServer, alice: InfluencerAccount
) -> None:
    live = await open_go_live(page, live_server, alice)
    stream = await go_live(live, "One of each")
    ctx = live_server.ctx

    arrived = time.monotonic()
    async with isolated_page(browser) as viewer:
        await viewer.goto(live_server.url("/watch/alice"))
        await plays_real_frames(viewer)
        (cookie,) = [c for c in await viewer.context.cookies() if c["name"] == VIEWER_COOKIE]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        for _ in range(2):
            await viewer.reload()
            await plays_real_frames(viewer)
        tab = await viewer.context.new_page()
        await tab.goto(live_server.url("/watch/alice"))
        await plays_real_frames(tab)
        await expect(tab.get_by_test_id("watch-state")).to_have_text("Live")

        # Two tabs connected at once: one viewer now, on the server and on the pages.
        record = await live_server.arun(settled_stream(ctx, stream["id"]))
        assert (record.current_viewers, record.peak_viewers) == (1, 1)
        await expect(live.viewers).to_have_text("1")
        await expect(tab.get_by_test_id("viewers")).to_have_text("1")
        await asyncio.sleep(OVERLAP_SECONDS)
        await tab.close()
    left = time.monotonic()
    present = left - arrived

    await live.end.click()
    await expect(live.status).to_have_text("Your stream has ended.")
    record = await live_server.arun(settled_stream(ctx, stream["id"]))
    peers = await live_server.arun(viewer_peers(ctx, stream["id"]))

    assert record.status == "ended"
    assert len(peers) == 4  # the first load, two reloads, the second tab
    assert len({p.user_id for p in peers}) == 1
    assert peers[0].user_id == cookie["value"].rpartition(".")[0]
    assert (record.unique_viewers, record.peak_viewers, record.current_viewers) == (1, 1, 0)
    per_tab = sum((p.left_at - p.joined_at).total_seconds() for p in peers)  # type: ignore[operator]
    union = union_seconds(peers)
    assert record.total_watch_seconds == pytest.approx(union, abs=1e-3)
    assert record.avg_watch_seconds == pytest.approx(union, abs=1e-3)
    # Watch time is the viewer's presence at most; the tabs' sum counts twice the seconds both
    # tabs were open. (Against `present`, the sum lost once on a loaded machine, where the page
    # loads around the overlap take longer than the overlap itself.)
    assert union < present + 1.0
    assert per_tab > union + OVERLAP_SECONDS / 2
