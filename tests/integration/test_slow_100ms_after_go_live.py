"""Every other 100ms call while 100ms hangs: End Stream (the influencer's and the admin's), the
reconciler and the admin's room-code actions answer within one deadline, and nobody waits
behind them (no database transaction is open during a provider call), on SQLite and
PostgreSQL. The pattern of test_go_live_slow.py; and a viewer arriving while Start Streaming
waits for 100ms is told to try again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from livestage.app import AppState
from livestage.models import LiveStream
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    AdminAccount,
    FakeClock,
    InfluencerAccount,
    create_influencer,
    csrf_token,
    load_influencer,
    login_admin,
    login_influencer,
)
from tests.support.hms_events import SessionScript
from tests.support.slow_hms import (
    ANSWER_WITHIN_SECONDS,
    SLOW_100MS_SECONDS,
    START,
    UNBLOCKED_WITHIN_SECONDS,
    alice,
    audit,
    client_for,
    creator,
    held,
    hms,
    settings_overrides,
    timed,
)

__all__ = ["alice", "creator", "hms", "settings_overrides"]

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def ops(
    app: FastAPI, admin: AdminAccount, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "198.51.100.5") as client:
        await login_admin(client, admin, clock)
        yield client


@pytest_asyncio.fixture
async def live(alice: httpx.AsyncClient, hms: EmulatorHandle) -> dict[str, Any]:
    """Alice's stream, live, her broadcaster in the 100ms room."""
    started = await alice.post("/api/streams", json=START)
    assert started.status_code == 201, started.text
    stream: dict[str, Any] = started.json()["stream"]
    hms.control.join_peer(stream["room_id"], user_id="host", role="broadcaster")
    assert (await alice.post("/api/streams/current/joined")).status_code == 200
    return stream


async def _others_wait(app: FastAPI, ctx: AppState, clock: FakeClock) -> dict[str, float]:
    """How long another creator's page, a sign-in and a 100ms webhook each took, at once."""
    bob_account = await create_influencer(ctx, "bob")
    carol_account = await create_influencer(ctx, "carol")
    async with (
        client_for(app, "198.51.100.2") as bob,
        client_for(app, "198.51.100.3") as carol,
        client_for(app, "198.51.100.4") as hundred_ms,
    ):
        await login_influencer(bob, bob_account)
        event = SessionScript(room_id="f" * 24).open(clock())
        (current, page, sign_in, webhook) = await asyncio.gather(
            timed(bob.get("/api/streams/current")),
            timed(bob.get("/influencer/live")),
            timed(login_influencer(carol, carol_account)),
            timed(
                hundred_ms.post(
                    "/webhooks/100ms",
                    json=event,
                    headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret},
                )
            ),
        )
    assert current[0].json() == {"stream": None}
    assert page[0].status_code == 200
    assert webhook[0].status_code == 200, webhook[0].text
    return {"current": current[1], "page": page[1], "sign_in": sign_in[1], "webhook": webhook[1]}


class TestHanging100ms:
    async def test_end_stream_answers_within_the_deadline_and_nobody_waits_behind_it(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        alice: httpx.AsyncClient,
        live: dict[str, Any],
        clock: FakeClock,
    ) -> None:
        end_room = f"/v2/active-rooms/{live['room_id']}/end-room"
        hms.control.queue_fault(end_room, kind="latency", seconds=SLOW_100MS_SECONDS, count=100)
        ending = asyncio.create_task(timed(alice.post("/api/streams/current/end")))
        await held(hms)
        waited = await _others_wait(app, ctx, clock)
        # Pages learn the stream ended before 100ms answers.
        state = (await alice.get("/api/live/alice")).json()
        answer, answered_after = await ending

        assert max(waited.values()) < UNBLOCKED_WITHIN_SECONDS, waited
        assert state["status"] == "ended"
        assert answered_after < ANSWER_WITHIN_SECONDS, answered_after
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ended"
        # The reconciler closes the room once 100ms answers again.
        assert answer.json()["room_close_pending_since"] is not None
        assert len(await audit(ctx, "stream.end")) == 1

    async def test_the_reconciler_waiting_on_100ms_holds_up_no_webhook_page_or_event(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        alice: httpx.AsyncClient,
        live: dict[str, Any],
        clock: FakeClock,
    ) -> None:
        worker = ctx.ingestion.worker
        assert worker is not None
        hms.control.queue_fault(
            f"/v2/active-rooms/{live['room_id']}",
            kind="latency",
            seconds=SLOW_100MS_SECONDS,
            count=100,
        )
        reconciling = asyncio.create_task(timed(worker.reconcile()))
        await held(hms)
        waited = await _others_wait(app, ctx, clock)
        # A viewer's join reaches livestage as a webhook and is applied meanwhile.
        script = SessionScript(room_id=live["room_id"])
        at = clock()
        async with client_for(app, "198.51.100.6") as hundred_ms:
            for event in (script.open(at), script.join("p-viewer", "viewer-1", "viewer", at)):
                stored = await hundred_ms.post(
                    "/webhooks/100ms",
                    json=event,
                    headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret},
                )
                assert stored.status_code == 200, stored.text
        applied, applied_after = await timed(worker.drain())
        state = (await alice.get("/api/live/alice")).json()
        report, reconciled_after = await reconciling

        assert max(waited.values()) < UNBLOCKED_WITHIN_SECONDS, waited
        assert applied_after < UNBLOCKED_WITHIN_SECONDS, applied_after
        assert applied >= 2
        assert (state["status"], state["viewers"]) == ("live", 1)
        assert report is not None
        assert reconciled_after < ANSWER_WITHIN_SECONDS, reconciled_after
        assert report.ended == [] and len(report.errors) == 1, report
        # An answer that did not come changes nothing.
        assert (await alice.get("/api/live/alice")).json()["status"] == "live"

    async def test_generating_a_room_code_answers_within_the_deadline_and_nobody_waits(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        ops: httpx.AsyncClient,
        creator: InfluencerAccount,
        clock: FakeClock,
    ) -> None:
        hms.control.queue_fault(kind="latency", seconds=SLOW_100MS_SECONDS, count=100)
        url = f"/api/admin/influencers/{creator.id}/room-code/generate"
        generating = asyncio.create_task(timed(ops.post(url)))
        await held(hms)
        waited = await _others_wait(app, ctx, clock)
        answer, answered_after = await generating

        assert max(waited.values()) < UNBLOCKED_WITHIN_SECONDS, waited
        assert answered_after < ANSWER_WITHIN_SECONDS, answered_after
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"].startswith("Could not generate a room code")
        assert (await load_influencer(ctx, creator.id)).room_code is None
        assert await audit(ctx, "room_code.generate") == []

    async def test_setting_a_room_code_answers_within_the_deadline_and_nobody_waits(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        ops: httpx.AsyncClient,
        creator: InfluencerAccount,
        clock: FakeClock,
    ) -> None:
        """As when 100ms is unreachable, the code is kept unchecked: the browser's own
        exchange of the code checks it."""
        hms.control.queue_fault(
            "/auth/v2/token", kind="latency", seconds=SLOW_100MS_SECONDS, count=100
        )
        url = f"/api/admin/influencers/{creator.id}/room-code"
        setting = asyncio.create_task(timed(ops.put(url, json={"code": "abc-defg-hij"})))
        await held(hms)
        waited = await _others_wait(app, ctx, clock)
        answer, answered_after = await setting

        assert max(waited.values()) < UNBLOCKED_WITHIN_SECONDS, waited
        assert answered_after < ANSWER_WITHIN_SECONDS, answered_after
        assert answer.status_code == 200, answer.text
        assert answer.json()["room_code"] == "abc-defg-hij"
        (saved,) = await audit(ctx, "room_code.set")
        assert saved.details["room_code"] == "abc-defg-hij"


class TestShortDeadline:
    @pytest.fixture
    def settings_overrides(self, hms: EmulatorHandle) -> dict[str, Any]:
        return {
            "hms_access_key": hms.access_key,
            "hms_app_secret": hms.app_secret,
            "hms_api_url": hms.api_url,
            "hms_auth_url": hms.auth_url,
            "worker_enabled": False,
            "go_live_deadline_seconds": 1.0,
        }

    async def test_an_admin_ends_a_stream_on_a_hanging_100ms_from_the_api_and_the_page(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        alice: httpx.AsyncClient,
        live: dict[str, Any],
        ops: httpx.AsyncClient,
        creator: InfluencerAccount,
    ) -> None:
        end_room = f"/v2/active-rooms/{live['room_id']}/end-room"
        hms.control.queue_fault(end_room, kind="latency", seconds=5, count=100)
        ended, answered_after = await timed(
            ops.post(f"/api/admin/influencers/{creator.id}/stream/end")
        )
        assert ended.status_code == 200, ended.text
        assert answered_after < 4
        assert ended.json()["status"] == "ended"
        assert ended.json()["room_close_pending_since"] is not None
        (audited,) = await audit(ctx, "stream.end")
        assert audited.details["reason"] == "admin"

        again = await alice.post("/api/streams", json=START)
        assert again.status_code == 201, again.text
        page, answered_after = await timed(
            ops.post(f"/admin/influencers/{creator.id}/stream/end", follow_redirects=False)
        )
        assert page.status_code == 303, page.text
        assert page.headers["location"].endswith("?notice=stream_ended")
        assert answered_after < 4
        assert len(await audit(ctx, "stream.end")) == 2

    async def test_end_stream_on_a_working_100ms_closes_the_room_and_owes_nothing(
        self, ctx: AppState, hms: EmulatorHandle, alice: httpx.AsyncClient, live: dict[str, Any]
    ) -> None:
        assert ctx.provider is not None
        ended = await alice.post("/api/streams/current/end")
        assert ended.status_code == 200, ended.text
        assert ended.json()["room_close_pending_since"] is None
        assert await ctx.provider.get_active_session(live["room_id"]) is None
        async with ctx.database.sessionmaker() as session:
            (stored,) = await session.scalars(select(LiveStream))
        assert stored.room_close_pending_since is None

    async def test_admin_end_of_an_unknown_influencer_is_a_404(
        self, ops: httpx.AsyncClient
    ) -> None:
        missing = "00000000-0000-0000-0000-000000000000"
        answer = await ops.post(f"/api/admin/influencers/{missing}/stream/end")
        assert answer.status_code == 404, answer.text


class TestViewerJoinDuringSetUp:
    async def test_a_viewer_joining_while_start_streaming_waits_for_100ms_is_told_to_retry(
        self, app: FastAPI, alice: httpx.AsyncClient, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=1, count=1)
        going_live = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        async with client_for(app, "198.51.100.7") as viewer:
            viewer.headers["x-csrf-token"] = await csrf_token(viewer)
            early = await viewer.post("/api/watch/alice/join")
            assert early.status_code == 503, early.text
            assert early.json()["detail"] == (
                "@alice is starting the stream; try again in a moment."
            )
            assert (await going_live).status_code == 201
            joined = await viewer.post("/api/watch/alice/join")
        assert joined.status_code == 200, joined.text
        assert joined.json()["token"]
