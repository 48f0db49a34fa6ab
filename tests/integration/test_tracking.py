"""Webhooks in → exact stream facts, whatever the order or duplication; SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select

from livestage.app import AppState
from livestage.models import ProviderEvent, StreamPeer, ViewerSample
from livestage.tracking import service
from livestage.tracking.events import Kind
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    FakeClock,
    InfluencerAccount,
    create_admin,
    create_influencer,
    login_admin,
    login_influencer,
)
from tests.support.hms_events import SessionScript, visit

pytestmark = pytest.mark.asyncio
START = {"title": "Tracked", "description": ""}


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "worker_enabled": False,
    }


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def stream(client: httpx.AsyncClient, creator: InfluencerAccount) -> dict[str, Any]:
    await login_influencer(client, creator)
    body: dict[str, Any] = (await client.post("/api/streams", json=START)).json()["stream"]
    return body


async def _post(client: httpx.AsyncClient, ctx: AppState, event: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/webhooks/100ms", json=event, headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret}
    )


async def _deliver(client: httpx.AsyncClient, ctx: AppState, events: list[dict[str, Any]]) -> None:
    for event in events:
        assert (await _post(client, ctx, event)).status_code == 200
    assert ctx.ingestion.worker is not None
    await ctx.ingestion.worker.drain()


def _script(stream: dict[str, Any], clock: FakeClock) -> tuple[SessionScript, list[dict[str, Any]]]:
    """Broadcaster live 10 min; 5 viewers (one user twice); known truth."""
    t0 = clock() + timedelta(seconds=5)
    script = SessionScript(room_id=stream["room_id"])
    events = [script.open(t0)]
    events += visit(script, "host", "broadcaster", t0, 600)
    events += visit(script, "v1", "viewer", t0 + timedelta(seconds=10), 100)
    events += visit(script, "v2", "viewer", t0 + timedelta(seconds=50), 200)
    events += visit(script, "v1", "viewer", t0 + timedelta(seconds=110), 30)
    events += visit(script, "v3", "viewer", t0 + timedelta(seconds=250), 100)
    events += visit(script, "v4", "viewer", t0 + timedelta(seconds=349), 1)
    events.append(script.close(t0 + timedelta(seconds=600)))
    return script, events


TRUTH = {
    "peak_viewers": 2,
    "unique_viewers": 4,
    "total_watch_seconds": 431.0,
    "duration_seconds": 600,
    "status": "ended",
}


async def _facts(client: httpx.AsyncClient, ctx: AppState, stream_id: str) -> dict[str, Any]:
    key = uuid.UUID(stream_id)
    async with ctx.database.sessionmaker() as session:
        peers = await session.scalar(
            select(func.count()).select_from(StreamPeer).where(StreamPeer.stream_id == key)
        )
        samples = list(
            await session.scalars(
                select(ViewerSample.viewers)
                .where(ViewerSample.stream_id == key)
                .order_by(ViewerSample.minute)
            )
        )
    current = (await client.get("/api/streams/mine")).json()
    found = next(s for s in current if s["id"] == stream_id)
    return {**{k: found[k] for k in TRUTH}, "peers": peers, "samples": samples}


class TestIngest:
    async def test_in_order_gives_the_true_numbers(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        _, events = _script(stream, clock)
        await _deliver(client, ctx, events)
        facts = await _facts(client, ctx, stream["id"])
        assert {k: facts[k] for k in TRUTH} == TRUTH
        assert facts["peers"] == 6
        assert max(facts["samples"]) == 2
        assert len(facts["samples"]) in (10, 11)

    async def test_shuffled_and_duplicated_gives_the_same_numbers(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        _, events = _script(stream, clock)
        chaos = [e for e in events for _ in range(random.Random(1).randint(1, 3))]
        random.Random(42).shuffle(chaos)
        in_order_samples = None
        await _deliver(client, ctx, chaos)
        facts = await _facts(client, ctx, stream["id"])
        assert {k: facts[k] for k in TRUTH} == TRUTH
        assert facts["peers"] == 6
        async with ctx.database.sessionmaker() as session:
            stored = await session.scalar(select(func.count()).select_from(ProviderEvent))
        assert stored == len(events)
        assert in_order_samples is None

    async def test_an_event_that_fails_to_apply_does_not_hold_up_the_rest_of_its_batch(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        stream: dict[str, Any],
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        join = service.HANDLERS[Kind.peer_join]

        async def refuse_v3(*args: Any) -> None:
            if args[2].text("user_id") == "v3":
                raise RuntimeError("cannot apply this one")
            await join(*args)

        monkeypatch.setitem(service.HANDLERS, Kind.peer_join, refuse_v3)
        _, events = _script(stream, clock)
        await _deliver(client, ctx, events)
        facts = await _facts(client, ctx, stream["id"])
        # Every other event of the batch was applied; v3's leave carries its join time, so
        # even v3 is counted.
        assert {k: facts[k] for k in TRUTH} == TRUTH
        assert facts["peers"] == 6
        async with ctx.database.sessionmaker() as session:
            stored = list(await session.scalars(select(ProviderEvent)))
        failed = [e for e in stored if e.error]
        assert [e.payload["data"]["user_id"] for e in failed] == ["v3"]
        assert failed[0].attempts == 1 and failed[0].processed_at is None
        assert all(e.processed_at is not None for e in stored if not e.error)

    async def test_duplicate_delivery_is_acknowledged_and_not_stored_twice(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        script = SessionScript(room_id=stream["room_id"])
        event = script.open(clock())
        first, again = await _post(client, ctx, event), await _post(client, ctx, event)
        assert first.json() == {"status": "ok", "duplicate": False}
        assert again.json() == {"status": "ok", "duplicate": True}

    async def test_broadcaster_join_makes_the_stream_live(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        script = SessionScript(room_id=stream["room_id"])
        await _deliver(
            client, ctx, [script.open(clock()), script.join("p1", "host", "broadcaster", clock())]
        )
        state = (await client.get("/api/live/alice")).json()
        assert state["status"] == "live"
        assert state["viewers"] == 0


class TestVerification:
    async def test_missing_or_wrong_secret_is_401_and_nothing_is_stored(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        event = SessionScript(room_id=stream["room_id"]).open(clock())
        missing = await client.post("/webhooks/100ms", json=event)
        wrong = await client.post(
            "/webhooks/100ms", json=event, headers={WEBHOOK_SECRET_HEADER: "guess"}
        )
        assert missing.status_code == wrong.status_code == 401
        async with ctx.database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(ProviderEvent)) == 0

    async def test_not_an_event_is_400(self, client: httpx.AsyncClient, ctx: AppState) -> None:
        headers = {
            WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret,
            "content-type": "application/json",
        }
        for body in (b"not json", b"[]", b'{"id": "x"}', b'{"id": "x", "type": "t", "data": 5}'):
            response = await client.post("/webhooks/100ms", content=body, headers=headers)
            assert response.status_code == 400


class TestGraceAndReconcile:
    async def test_broadcaster_back_within_grace_keeps_the_stream_live(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        script = SessionScript(room_id=stream["room_id"])
        t0 = clock()
        first = visit(script, "host", "broadcaster", t0, 30)
        back = script.join("p2", "host", "broadcaster", t0 + timedelta(seconds=50))
        await _deliver(client, ctx, [script.open(t0), *first, back])
        clock.advance(seconds=200)
        assert ctx.ingestion.worker is not None
        assert await ctx.ingestion.worker.end_after_grace() == []
        assert (await client.get("/api/live/alice")).json()["status"] == "live"

    async def test_broadcaster_gone_past_grace_ends_the_stream(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        script = SessionScript(room_id=stream["room_id"])
        t0 = clock()
        await _deliver(
            client, ctx, [script.open(t0), *visit(script, "host", "broadcaster", t0, 30)]
        )
        clock.advance(seconds=61)
        assert ctx.ingestion.worker is not None
        assert await ctx.ingestion.worker.end_after_grace() == []
        clock.advance(seconds=30)
        ended = await ctx.ingestion.worker.end_after_grace()
        assert len(ended) == 1
        state = (await client.get("/api/live/alice")).json()
        assert state["status"] == "ended"
        assert state["ended_at"].startswith((t0 + timedelta(seconds=30)).isoformat()[:19])

    async def test_reconciler_ends_a_stream_whose_session_is_gone(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        stream: dict[str, Any],
        clock: FakeClock,
        emulator: EmulatorHandle,
    ) -> None:
        await client.post("/api/streams/current/joined")
        assert ctx.ingestion.worker is not None
        report = await ctx.ingestion.worker.reconcile()
        assert report is not None
        assert [s.id for s in report.ended] == [uuid.UUID(stream["id"])]
        assert (await client.get("/api/live/alice")).json()["status"] == "ended"

    async def test_reconciler_keeps_a_stream_with_a_live_session(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        stream: dict[str, Any],
        emulator: EmulatorHandle,
    ) -> None:
        emulator.control.join_peer(stream["room_id"], user_id="host", role="broadcaster")
        await client.post("/api/streams/current/joined")
        assert ctx.ingestion.worker is not None
        report = await ctx.ingestion.worker.reconcile()
        assert report is not None
        assert report.ended == []
        assert (await client.get("/api/live/alice")).json()["status"] == "live"


async def _mine(client: httpx.AsyncClient, stream_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        s for s in (await client.get("/api/streams/mine")).json() if s["id"] == stream_id
    )
    return found


class TestTheBroadcasterOwnsTheStream:
    """Viewers never open, keep alive or end a stream (SPEC §2)."""

    async def test_a_viewer_who_leaves_before_the_broadcaster_came_ends_nothing(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        t0 = clock()
        early = SessionScript(room_id=stream["room_id"])
        events = [early.open(t0), *visit(early, "v1", "viewer", t0, 20)]
        await _deliver(client, ctx, [*events, early.close(t0 + timedelta(seconds=20))])
        found = await _mine(client, stream["id"])
        assert (found["status"], found["end_reason"], found["ended_at"]) == ("starting", None, None)

        later = SessionScript(room_id=stream["room_id"])
        t1 = t0 + timedelta(seconds=90)
        await _deliver(client, ctx, [later.open(t1), later.join("p1", "host", "broadcaster", t1)])
        found = await _mine(client, stream["id"])
        assert found["status"] == "live"
        assert found["started_at"].startswith(t1.isoformat()[:19])

    async def test_a_close_delivered_before_the_broadcasters_join_still_ends_the_stream(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        t0 = clock()
        script = SessionScript(room_id=stream["room_id"])
        opened = script.open(t0)
        visited = visit(script, "host", "broadcaster", t0, 300)
        await _deliver(client, ctx, [script.close(t0 + timedelta(seconds=300)), opened, *visited])
        found = await _mine(client, stream["id"])
        assert (found["status"], found["end_reason"]) == ("ended", "session_closed")
        assert found["duration_seconds"] == 300

    async def test_a_starting_stream_fails_when_the_broadcaster_never_joins(
        self, client: httpx.AsyncClient, ctx: AppState, stream: dict[str, Any], clock: FakeClock
    ) -> None:
        assert ctx.ingestion.worker is not None
        clock.advance(seconds=299)
        assert await ctx.ingestion.worker.end_after_grace() == []
        assert (await _mine(client, stream["id"]))["status"] == "starting"
        clock.advance(seconds=2)
        assert len(await ctx.ingestion.worker.end_after_grace()) == 1
        found = await _mine(client, stream["id"])
        assert (found["status"], found["end_reason"]) == ("failed", "broadcaster_never_joined")

    async def test_the_reconciler_waits_for_the_broadcaster_until_the_start_timeout(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        stream: dict[str, Any],
        clock: FakeClock,
        emulator: EmulatorHandle,
    ) -> None:
        assert ctx.ingestion.worker is not None
        clock.advance(seconds=120)  # past the reconnect grace, not the start timeout
        report = await ctx.ingestion.worker.reconcile()
        assert report is not None and report.ended == []
        assert (await _mine(client, stream["id"]))["status"] == "starting"
        clock.advance(seconds=200)
        report = await ctx.ingestion.worker.reconcile()
        assert report is not None and [s.id for s in report.ended] == [uuid.UUID(stream["id"])]
        found = await _mine(client, stream["id"])
        assert (found["status"], found["end_reason"]) == ("failed", "broadcaster_never_joined")


class TestEndWhile100msFails:
    @pytest.fixture
    def settings_overrides(self, emulator: EmulatorHandle) -> dict[str, Any]:
        return {
            **emulator.app_settings(),
            "hms_max_retries": 0,
            "worker_enabled": False,
        }

    async def test_the_room_is_closed_later_with_no_one_clicking_again(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        stream: dict[str, Any],
        clock: FakeClock,
        emulator: EmulatorHandle,
        app: FastAPI,
    ) -> None:
        assert ctx.provider is not None
        room_id = stream["room_id"]
        end_room = f"/v2/active-rooms/{room_id}/end-room"
        emulator.control.join_peer(room_id, user_id="host", role="broadcaster")
        await client.post("/api/streams/current/joined")
        emulator.control.queue_fault(end_room, kind="status", status=500, count=1)
        ended = await client.post("/api/streams/current/end")
        assert ended.json()["status"] == "ended"
        assert ended.json()["room_close_pending_since"] is not None
        assert await ctx.provider.get_active_session(room_id) is not None

        admin = await create_admin(ctx)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as web:
            await login_admin(web, admin, clock)
            page = await web.get(f"/admin/streams/{stream['id']}")
            assert "100ms room still open: retrying" in page.text

            clock.advance(seconds=30)
            assert ctx.ingestion.worker is not None
            await ctx.ingestion.worker.reconcile()
            assert len(emulator.control.requests(path_prefix=end_room)) == 2
            assert await ctx.provider.get_active_session(room_id) is None
            found = await _mine(client, stream["id"])
            assert (found["status"], found["room_close_pending_since"]) == ("ended", None)
            page = await web.get(f"/admin/streams/{stream['id']}")
            assert "100ms room still open" not in page.text
