"""Keyset pagination: every list pages by cursor (each row once, in order, even while rows are
added between pages), a stream's page shows one page of a crowd plus its chart, a bad cursor is
a 400, and the open-stream lookups use their partial index. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from livestage.app import AppState
from livestage.db import transaction
from livestage.kit.time import utc_now
from livestage.models import (
    AuditLog,
    LiveStream,
    StreamPeer,
    StreamStatus,
    StreamStrategy,
    ViewerSample,
)
from livestage.streams.repository import StreamRepository
from tests.support.fixtures import create_influencer, login_influencer

pytestmark = pytest.mark.asyncio
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=utc_now().tzinfo)


async def _add_streams(
    ctx: AppState, influencer_id: uuid.UUID, count: int, *, start: datetime, step_s: int
) -> list[uuid.UUID]:
    """`count` ended streams, created `step_s` seconds apart from `start` (0: all at the same
    instant, so only the id breaks the tie)."""
    rows = [
        {
            "id": uuid.uuid4(),
            "influencer_id": influencer_id,
            "provider": "hms",
            "strategy": StreamStrategy.automatic,
            "status": StreamStatus.ended,
            "title": f"s{i}",
            "created_at": start + timedelta(seconds=step_s * i),
            "updated_at": start,
        }
        for i in range(count)
    ]
    async with transaction(ctx.database.sessionmaker) as session:
        await session.execute(insert(cast(Table, LiveStream.__table__)), rows)
    return [cast(uuid.UUID, r["id"]) for r in rows]


async def _expected_order(ctx: AppState, ids: list[uuid.UUID]) -> list[str]:
    """The database's own newest-first order of these streams (ties broken by id, as the
    database compares its ids)."""
    async with transaction(ctx.database.sessionmaker) as session:
        statement = (
            select(LiveStream.id)
            .where(LiveStream.id.in_(ids))
            .order_by(LiveStream.created_at.desc(), LiveStream.id.desc())
        )
        return [str(i) for i in await session.scalars(statement)]


async def _walk_api(client: httpx.AsyncClient, url: str, *, between_pages: Any = None) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        sep = "&" if "?" in url else "?"
        response = await client.get(url + (f"{sep}cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages()
    raise AssertionError("the cursor never ran out")


class TestStreamLists:
    async def test_admin_api_pages_each_stream_once_while_streams_are_added(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        alice = await create_influencer(ctx, "alice")
        # 30 at one instant (ties decided by id) among 70 a second apart.
        ids = await _add_streams(ctx, alice.id, 70, start=BASE, step_s=1)
        ids += await _add_streams(ctx, alice.id, 30, start=BASE + timedelta(seconds=20), step_s=0)
        expected = await _expected_order(ctx, ids)
        added: list[uuid.UUID] = []

        async def add_newer_and_older() -> None:
            # A newer stream belongs before the cursor (the next page must not show it); an
            # older one after it (it must show up once, in its place).
            added.extend(
                await _add_streams(ctx, alice.id, 1, start=BASE + timedelta(days=1), step_s=0)
            )
            # Each older than all before it, so it always sorts after the cursor.
            older_start = BASE - timedelta(days=1, seconds=len(added))
            added.extend(await _add_streams(ctx, alice.id, 1, start=older_start, step_s=0))

        seen = await _walk_api(
            admin_client, "/api/admin/streams?limit=7", between_pages=add_newer_and_older
        )
        assert len(seen) == len(set(seen)), "a stream was shown twice"
        assert [i for i in seen if uuid.UUID(i) in set(ids)] == expected
        older = {str(i) for i in added[1::2]}
        newer = {str(i) for i in added[0::2]}
        assert older <= set(seen)
        assert not newer & set(seen)

    async def test_filters_and_the_old_offset_still_page(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        alice = await create_influencer(ctx, "alice")
        bob = await create_influencer(ctx, "bob")
        mine = await _add_streams(ctx, alice.id, 12, start=BASE, step_s=60)
        await _add_streams(ctx, bob.id, 9, start=BASE, step_s=61)
        expected = await _expected_order(ctx, mine)
        assert await _walk_api(admin_client, "/api/admin/streams?limit=5&handle=alice") == (
            expected
        )
        ended = await _walk_api(admin_client, "/api/admin/streams?limit=4&status=ended")
        assert len(ended) == 21 == len(set(ended))
        response = await admin_client.get("/api/admin/streams?handle=alice&limit=5&offset=5")
        assert [s["id"] for s in response.json()] == expected[5:10]

    async def test_influencer_api_and_page_follow_the_cursor(
        self, ctx: AppState, client: httpx.AsyncClient
    ) -> None:
        alice = await create_influencer(ctx, "alice")
        bob = await create_influencer(ctx, "bob")
        mine = await _add_streams(ctx, alice.id, 120, start=BASE, step_s=30)
        await _add_streams(ctx, bob.id, 5, start=BASE, step_s=30)
        expected = await _expected_order(ctx, mine)
        await login_influencer(client, alice)
        assert await _walk_api(client, "/api/streams/mine?limit=11") == expected

        shown: list[str] = []
        url: str | None = "/influencer/streams"
        while url:
            response = await client.get(url)
            assert response.status_code == 200, response.text
            shown += re.findall(r'href="/influencer/streams/([0-9a-f-]{36})"', response.text)
            found = re.search(r'<a rel="next" href="(\?cursor=[^"]+)"', response.text)
            url = "/influencer/streams" + found.group(1).replace("&amp;", "&") if found else None
        assert list(dict.fromkeys(shown)) == expected

    async def test_admin_page_next_link_uses_the_cursor(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        alice = await create_influencer(ctx, "alice")
        expected = await _expected_order(
            ctx, await _add_streams(ctx, alice.id, 75, start=BASE, step_s=10)
        )
        first = await admin_client.get("/admin/streams?handle=alice")
        link = re.search(r'<a rel="next" href="([^"]+)"', first.text)
        assert link is not None and "cursor=" in link.group(1) and "page=" not in link.group(1)
        second = await admin_client.get("/admin/streams" + link.group(1).replace("&amp;", "&"))
        assert second.status_code == 200
        ids = re.findall(r'href="/admin/streams/([0-9a-f-]{36})"', first.text + second.text)
        assert list(dict.fromkeys(ids)) == expected
        assert 'rel="next"' not in second.text and ">Newest</a>" in second.text

    @pytest.mark.parametrize(
        "cursor", ["x", "not-base64!!", "WzEsMl0", "W251bGwsIjEiXQ", "a" * 201]
    )
    async def test_a_bad_cursor_is_a_400(
        self, admin_client: httpx.AsyncClient, cursor: str
    ) -> None:
        for url in ("/api/admin/streams", "/admin/streams"):
            response = await admin_client.get(url, params={"cursor": cursor})
            assert response.status_code in (400, 422), (url, response.text)
        response = await admin_client.get("/api/admin/streams", params={"cursor": cursor[:200]})
        assert response.status_code == 400
        assert "cursor" in response.text.lower()


class TestStreamPage:
    async def test_a_crowd_shows_one_page_of_participants_and_the_chart(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        alice = await create_influencer(ctx, "alice")
        [stream_id] = await _add_streams(ctx, alice.id, 1, start=BASE, step_s=0)
        peers = [
            {
                "id": uuid.uuid4(),
                "stream_id": stream_id,
                "peer_id": f"peer-{i}",
                "user_id": f"viewer-{i}",
                "name": f"Viewer {i}",
                "role": "viewer",
                "is_broadcaster": False,
                "joined_at": BASE + timedelta(seconds=i // 3),
                "left_at": None,
                "left_inferred": False,
            }
            for i in range(2000)
        ]
        samples = [
            {"stream_id": stream_id, "minute": BASE + timedelta(minutes=m), "viewers": 10 * m}
            for m in range(12)
        ]
        async with transaction(ctx.database.sessionmaker) as session:
            await session.execute(insert(cast(Table, StreamPeer.__table__)), peers)
            await session.execute(insert(cast(Table, ViewerSample.__table__)), samples)

        response = await admin_client.get(f"/admin/streams/{stream_id}")
        assert response.status_code == 200
        assert response.text.count("<tr data-peer-id=") == 50
        assert 'id="viewers-chart"' in response.text
        assert "Viewer 0<" in response.text and "Viewer 60<" not in response.text

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"peers_limit": 170}
            if cursor:
                params["peers_cursor"] = cursor
            body = (await admin_client.get(f"/api/admin/streams/{stream_id}", params=params)).json()
            assert len(body["viewers_per_minute"]) == 12
            seen += [p["peer_id"] for p in body["peers"]]
            cursor = body["peers_next_cursor"]
            if cursor is None:
                break
        async with transaction(ctx.database.sessionmaker) as session:
            statement = (
                select(StreamPeer.peer_id)
                .where(StreamPeer.stream_id == stream_id)
                .order_by(StreamPeer.joined_at, StreamPeer.id)
            )
            expected = list(await session.scalars(statement))
        assert seen == expected and len(seen) == 2000


class TestAuditLog:
    async def test_api_pages_each_entry_once_in_order(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        rows = [
            {
                "id": uuid.uuid4(),
                "created_at": BASE + timedelta(seconds=i // 4),
                "action": "test.entry",
                "details": {},
            }
            for i in range(90)
        ]
        async with transaction(ctx.database.sessionmaker) as session:
            await session.execute(insert(cast(Table, AuditLog.__table__)), rows)
            statement = (
                select(AuditLog.id)
                .where(AuditLog.action == "test.entry")
                .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            )
            expected = [str(i) for i in await session.scalars(statement)]
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"action": "test.entry", "limit": 13}
            if cursor:
                params["cursor"] = cursor
            response = await admin_client.get("/api/admin/audit", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            seen += [e["id"] for e in body["items"]]
            cursor = body.get("next_cursor")
            if cursor is None:
                break
            async with transaction(ctx.database.sessionmaker) as session:
                session.add(AuditLog(action="test.entry", created_at=utc_now(), details={}))
        assert seen == expected


def _capture(engine: AsyncEngine) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", remember)
    return statements


class TestOpenStreamLookups:
    async def test_the_partial_index_is_used(self, ctx: AppState) -> None:
        alice = await create_influencer(ctx, "alice")
        await _add_streams(ctx, alice.id, 50, start=BASE, step_s=1)
        engine = ctx.database.engine
        statements = _capture(engine)
        async with transaction(ctx.database.sessionmaker) as session:
            assert await StreamRepository(session).get_active(alice.id) is None
        sql, parameters = next(s for s in statements if "live_streams.status IN" in s[0])
        assert "'starting'" in sql and "'live'" in sql, sql
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
                details = " ".join(str(row[-1]) for row in plan)
            else:
                await connection.execute(text("SET enable_seqscan = off"))
                plan = await connection.exec_driver_sql("EXPLAIN " + sql, parameters)
                details = " ".join(str(row[0]) for row in plan)
        assert "uq_live_streams_one_active_per_influencer" in details, details
