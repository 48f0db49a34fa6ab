"""Go live while 100ms is slow or hangs: the creator gets an answer within one deadline, and
nobody else waits behind the 100ms calls (no database transaction is open during them), on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
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


async def _streams(ctx: AppState) -> list[LiveStream]:
    async with ctx.database.sessionmaker() as session:
        return list(await session.scalars(select(LiveStream)))


class TestHanging100ms:
    async def test_the_creator_is_answered_within_15_s_and_nobody_waits_behind_the_calls(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        alice: httpx.AsyncClient,
        clock: FakeClock,
    ) -> None:
        bob_account = await create_influencer(ctx, "bob")
        carol_account = await create_influencer(ctx, "carol")
        async with (
            client_for(app, "198.51.100.2") as bob,
            client_for(app, "198.51.100.3") as carol,
            client_for(app, "198.51.100.4") as hundred_ms,
        ):
            await login_influencer(bob, bob_account)
            hms.control.queue_fault(kind="latency", seconds=SLOW_100MS_SECONDS, count=100)
            going_live = asyncio.create_task(timed(alice.post("/api/streams", json=START)))
            await held(hms)
            event = SessionScript(room_id="f" * 24).open(clock())
            current, sign_in, webhook = await asyncio.gather(
                timed(bob.get("/api/streams/current")),
                timed(login_influencer(carol, carol_account)),
                timed(
                    hundred_ms.post(
                        "/webhooks/100ms",
                        json=event,
                        headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret},
                    )
                ),
            )
            answer, answered_after = await going_live

        waited = {"current": current[1], "sign_in": sign_in[1], "webhook": webhook[1]}
        assert max(waited.values()) < UNBLOCKED_WITHIN_SECONDS, waited
        assert current[0].json() == {"stream": None}
        assert webhook[0].status_code == 200, webhook[0].text

        assert answered_after < ANSWER_WITHIN_SECONDS, answered_after
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "provider_unavailable"
        assert answer.json()["detail"] == "100ms is not answering right now; try again in a minute."
        assert await _streams(ctx) == []
        # The admin's audit page says why.
        (blocked,) = await audit(ctx, "stream.start_blocked")
        assert any("deadline" in problem for problem in blocked.details["problems"])

    async def test_an_admin_who_turns_streaming_off_meanwhile_is_not_kept_waiting_and_wins(
        self,
        app: FastAPI,
        ctx: AppState,
        hms: EmulatorHandle,
        alice: httpx.AsyncClient,
        creator: InfluencerAccount,
        admin: AdminAccount,
        clock: FakeClock,
    ) -> None:
        """The admin writes the very record go-live checks and records (a row lock on
        PostgreSQL, the one writer on SQLite): go-live holds it only for its short steps."""
        async with client_for(app, "198.51.100.4") as ops:
            await login_admin(ops, admin, clock)
            hms.control.queue_fault(kind="latency", seconds=SLOW_100MS_SECONDS, count=100)
            going_live = asyncio.create_task(timed(alice.post("/api/streams", json=START)))
            await held(hms)
            turned_off, waited = await timed(
                ops.put(f"/api/admin/influencers/{creator.id}/streaming", json={"enabled": False})
            )
            answer, answered_after = await going_live

        assert waited < UNBLOCKED_WITHIN_SECONDS, waited
        assert turned_off.status_code == 200, turned_off.text
        assert answered_after < ANSWER_WITHIN_SECONDS, answered_after
        assert answer.status_code == 403, answer.text
        assert await _streams(ctx) == []
        assert len(await audit(ctx, "stream.start_refused")) == 1


class TestDeadline:
    @pytest.fixture
    def settings_overrides(self, hms: EmulatorHandle) -> dict[str, Any]:
        return {
            "hms_access_key": hms.access_key,
            "hms_app_secret": hms.app_secret,
            "hms_api_url": hms.api_url,
            "hms_auth_url": hms.auth_url,
            "worker_enabled": False,
            "go_live_deadline_seconds": 1.0,
            # Without the deadline, 6 retries of a failing call back off for 11.75 s at least.
            "hms_max_retries": 6,
        }

    async def test_a_room_100ms_makes_after_the_deadline_is_the_retry_room(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=5, count=1)
        late, answered_after = await timed(alice.post("/api/streams", json=START))
        assert late.status_code == 503, late.text
        assert late.json()["code"] == "provider_unavailable"
        assert answered_after < 4
        assert await _streams(ctx) == []
        (blocked,) = await audit(ctx, "stream.start_blocked")
        assert any("deadline" in problem for problem in blocked.details["problems"])

        with hms.api() as api:
            # 100ms finishes the call livestage stopped waiting for: the room exists now.
            room = api.post("/rooms", json={"name": "livestage-alice"}).json()
            retried = await alice.post("/api/streams", json=START)
            assert retried.status_code == 201, retried.text
            assert retried.json()["stream"]["room_id"] == room["id"]
            rooms = api.get("/rooms", params={"name": "livestage-alice"}).json()["data"]
        assert len(rooms) == 1
        assert [s.status for s in await _streams(ctx)] == ["starting"]

    async def test_a_room_made_before_the_deadline_is_remembered_for_the_retry(
        self,
        alice: httpx.AsyncClient,
        ctx: AppState,
        hms: EmulatorHandle,
        creator: InfluencerAccount,
    ) -> None:
        # The room comes at once, its codes only after the deadline.
        hms.control.queue_fault("/v2/room-codes", kind="latency", seconds=5, count=1)
        late, answered_after = await timed(alice.post("/api/streams", json=START))
        assert late.status_code == 503, late.text
        assert answered_after < 4
        with hms.api() as api:
            (room,) = api.get("/rooms", params={"name": "livestage-alice"}).json()["data"]
        influencer = await load_influencer(ctx, creator.id)
        assert influencer.hms_room_id == room["id"]

        retried = await alice.post("/api/streams", json=START)
        assert retried.status_code == 201, retried.text
        assert retried.json()["stream"]["room_id"] == room["id"]
        assert set(retried.json()["stream"]["room_codes"]) == {"broadcaster", "viewer"}

    async def test_a_room_code_100ms_cannot_check_in_time_is_taken_unchecked(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        """As when 100ms is unreachable: the browser's own exchange of the code checks it."""
        hms.control.queue_fault("/auth/v2/token", kind="latency", seconds=5, count=1)
        body = {**START, "code": "abc-defg-hij"}
        answer, answered_after = await timed(alice.post("/api/streams/room-code", json=body))
        assert answer.status_code == 201, answer.text
        assert answered_after < 4
        assert answer.json()["stream"]["strategy"] == "room_code"
        assert answer.json()["join"]["room_code"] == "abc-defg-hij"

    async def test_a_second_click_on_a_hanging_100ms_is_answered_in_time_too(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", kind="latency", seconds=5, count=100)
        first = asyncio.create_task(timed(alice.post("/api/streams", json=START)))
        await held(hms)
        second, second_after = await timed(alice.post("/api/streams", json=START))
        first_answer, first_after = await first
        assert (first_answer.status_code, second.status_code) == (503, 503), second.text
        assert second.json()["code"] == "provider_unavailable"
        assert max(first_after, second_after) < 4
        assert await _streams(ctx) == []

    async def test_retries_stop_at_the_deadline(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", kind="status", status=503, count=100)
        answer, answered_after = await timed(alice.post("/api/streams", json=START))
        assert answer.status_code == 503
        assert answered_after < 4
        tries = hms.control.requests(path_prefix="/v2/rooms", method="POST")
        assert 1 <= len(tries) < 7


class TestConcurrentClicks:
    async def test_a_click_while_the_first_waits_on_100ms_gets_the_same_stream(
        self, app: FastAPI, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=1, count=100)
        first = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        second = await alice.post("/api/streams", json=START)
        first_answer = await first
        assert (first_answer.status_code, second.status_code) == (201, 200)
        assert second.json()["stream"]["id"] == first_answer.json()["stream"]["id"]
        assert second.json()["stream"]["room_id"] == first_answer.json()["stream"]["room_id"]
        assert second.json()["join"]["token"]
        # The second click asked 100ms nothing: it waited for the first.
        assert len(hms.control.requests(path_prefix="/v2/rooms", method="POST")) == 1
        assert len(await _streams(ctx)) == 1

    async def test_end_stream_during_the_set_up_wins(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=1, count=1)
        first = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        ended = await alice.post("/api/streams/current/end")
        assert ended.status_code == 200, ended.text
        answer = await first
        assert answer.status_code == 409, answer.text
        assert "Start again" in answer.json()["detail"]
        assert [str(s.status) for s in await _streams(ctx)] == ["ended"]
        assert (await alice.get("/api/streams/current")).json() == {"stream": None}

    async def test_a_room_code_or_joined_while_start_streaming_sets_up_are_asked_to_wait(
        self, alice: httpx.AsyncClient, ctx: AppState, hms: EmulatorHandle
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=1, count=1)
        first = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        body = {**START, "code": "abc-defg-hij"}
        for refused in (
            await alice.post("/api/streams/room-code", json=body),
            await alice.post("/api/streams/current/joined"),
        ):
            assert refused.status_code == 409, refused.text
            assert "try again in a moment" in refused.json()["detail"]
        assert (await first).status_code == 201
        assert len(await _streams(ctx)) == 1


class TestInterrupted:
    async def test_a_go_live_cut_off_during_its_100ms_calls_leaves_no_stuck_stream(
        self,
        alice: httpx.AsyncClient,
        ctx: AppState,
        hms: EmulatorHandle,
        clock: FakeClock,
    ) -> None:
        """The process dies (here: the request is cancelled) between claiming the stream and
        recording its room: the claim fails after the start timeout, like any stream whose
        broadcaster never joined, and a later click is not refused because of it."""
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=5, count=1)
        cut_off = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        cut_off.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut_off
        (claim,) = await _streams(ctx)
        assert (claim.status, claim.room_id) == ("starting", None)

        clock.advance(seconds=ctx.settings.start_timeout_seconds + 1)
        await ctx.ingestion.worker.end_after_grace()
        (failed,) = await _streams(ctx)
        assert failed.status == "failed"
        assert failed.end_reason == "broadcaster_never_joined"

        again = await alice.post("/api/streams", json=START)
        assert again.status_code == 201, again.text

    async def test_a_later_click_takes_over_a_claim_whose_go_live_died(
        self,
        alice: httpx.AsyncClient,
        ctx: AppState,
        hms: EmulatorHandle,
        clock: FakeClock,
    ) -> None:
        hms.control.queue_fault("/v2/rooms", method="POST", kind="latency", seconds=5, count=1)
        cut_off = asyncio.create_task(alice.post("/api/streams", json=START))
        await held(hms)
        cut_off.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut_off

        # Long after any go-live could still be waiting on 100ms, well before the start timeout.
        clock.advance(seconds=ctx.settings.go_live_deadline_seconds * 2 + 1)
        again, answered_after = await timed(alice.post("/api/streams", json=START))
        assert again.status_code == 201, again.text
        assert answered_after < UNBLOCKED_WITHIN_SECONDS
        statuses = sorted(str(s.status) for s in await _streams(ctx))
        assert statuses == ["failed", "starting"]
