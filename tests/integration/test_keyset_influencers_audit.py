"""The admin influencer list and the audit log page by keyset: each row once, in order, across
equal timestamps and rows added between pages; bad cursors are a 400 that changes nothing; the
pages' next links follow the cursor; the audit API counts nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, event, func, insert, select, text

from livestage.app import AppState, create_app
from livestage.db import transaction
from livestage.influencers.repository import InfluencerRepository
from livestage.kit.time import utc_now
from livestage.models import (
    AuditLog,
    Influencer,
    LiveStream,
    StreamStatus,
    StreamStrategy,
    User,
    UserRole,
)
from livestage.models.keyset import encode_cursor
from tests.support.fixtures import make_settings

pytestmark = pytest.mark.asyncio
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=utc_now().tzinfo)
BAD_CURSORS = ["x", "not-base64!!", "WzEsMl0", "W251bGwsIjEiXQ", "a" * 200]


async def _add_influencers(
    ctx: AppState, count: int, *, start: datetime, step_s: int
) -> list[uuid.UUID]:
    """`count` influencers created `step_s` seconds apart from `start` (0: one instant, so only
    the id orders them)."""
    users, influencers = [], []
    for i in range(count):
        at = start + timedelta(seconds=step_s * i)
        user_id, handle = uuid.uuid4(), f"k{uuid.uuid4().hex[:12]}"
        users.append(
            {
                "id": user_id,
                "email": f"{handle}@example.com",
                "display_name": handle,
                "password_hash": "not-a-password",
                "role": UserRole.influencer,
                "created_at": at,
                "updated_at": at,
            }
        )
        influencers.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "handle": handle,
                "streaming_enabled": True,
                "created_at": at,
                "updated_at": at,
            }
        )
    async with transaction(ctx.database.sessionmaker) as session:
        await session.execute(insert(cast(Table, User.__table__)), users)
        await session.execute(insert(cast(Table, Influencer.__table__)), influencers)
    return [cast(uuid.UUID, row["id"]) for row in influencers]


async def _newest_first(ctx: AppState) -> list[str]:
    """The database's own order (ties broken by id as the database compares its ids)."""
    statement = select(Influencer.id).order_by(Influencer.created_at.desc(), Influencer.id.desc())
    async with transaction(ctx.database.sessionmaker) as session:
        return [str(i) for i in await session.scalars(statement)]


async def _add_audit(ctx: AppState, count: int, *, per_instant: int) -> list[str]:
    rows = [
        {
            "id": uuid.uuid4(),
            "created_at": BASE + timedelta(seconds=i // per_instant),
            "action": "test.entry",
            "details": {},
        }
        for i in range(count)
    ]
    statement = (
        select(AuditLog.id)
        .where(AuditLog.action == "test.entry")
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    )
    async with transaction(ctx.database.sessionmaker) as session:
        await session.execute(insert(cast(Table, AuditLog.__table__)), rows)
        return [str(i) for i in await session.scalars(statement)]


async def _walk_influencers(
    client: httpx.AsyncClient, limit: int, between: Callable[[], Awaitable[None]] | None = None
) -> list[str]:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(1000):
        response = await client.get("/api/admin/influencers", params=params)
        assert response.status_code == 200, response.text
        seen += [i["id"] for i in response.json()]
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return seen
        params["cursor"] = cursor
        if between is not None:
            await between()
    raise AssertionError("the cursor never ran out")


async def _walk_pages(client: httpx.AsyncClient, path: str) -> tuple[list[str], list[str]]:
    """Follow each page's rel="next" link; the ids shown (in page order) and the pages' HTML."""
    ids: list[str] = []
    pages: list[str] = []
    url: str | None = path
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.text)
        ids += re.findall(r'href="/admin/influencers/([0-9a-f-]{36})"', response.text)
        ids += re.findall(r'data-entry-id="([0-9a-f-]{36})"', response.text)
        found = re.search(r'<a rel="next" href="([^"]+)"', response.text)
        url = path.split("?")[0] + found.group(1).replace("&amp;", "&") if found else None
    return ids, pages


async def _stored(ctx: AppState) -> tuple[int, int, int]:
    async with transaction(ctx.database.sessionmaker) as session:
        return (
            await session.scalar(select(func.count()).select_from(Influencer)) or 0,
            await session.scalar(select(func.count()).select_from(AuditLog)) or 0,
            await session.scalar(select(func.count()).select_from(User)) or 0,
        )


class TestInfluencerList:
    async def test_api_pages_each_once_across_ties_while_influencers_are_added(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        # 25 at one instant (only the id orders them) among 40 a second apart.
        await _add_influencers(ctx, 40, start=BASE, step_s=1)
        await _add_influencers(ctx, 25, start=BASE + timedelta(seconds=10), step_s=0)
        expected = await _newest_first(ctx)
        added: list[uuid.UUID] = []

        async def add_newer_and_older() -> None:
            # Newer belongs before the cursor (never shown); older after it (shown once).
            added.extend(await _add_influencers(ctx, 1, start=BASE + timedelta(days=1), step_s=0))
            older = BASE - timedelta(days=1, seconds=len(added))
            added.extend(await _add_influencers(ctx, 1, start=older, step_s=0))

        seen = await _walk_influencers(admin_client, 6, add_newer_and_older)
        assert len(seen) == len(set(seen)), "an influencer was listed twice"
        assert [i for i in seen if i in set(expected)] == expected
        assert {str(i) for i in added[1::2]} <= set(seen)
        assert not {str(i) for i in added[0::2]} & set(seen)

    async def test_a_full_last_page_has_no_next_cursor(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        await _add_influencers(ctx, 10, start=BASE, step_s=0)
        first = await admin_client.get("/api/admin/influencers", params={"limit": 5})
        second = await admin_client.get(
            "/api/admin/influencers", params={"limit": 5, "cursor": first.headers["x-next-cursor"]}
        )
        assert len(second.json()) == 5
        assert "x-next-cursor" not in second.headers
        everyone = await admin_client.get("/api/admin/influencers")
        assert [i["id"] for i in everyone.json()] == await _newest_first(ctx)

    async def test_the_page_next_link_walks_the_list(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        await _add_influencers(ctx, 70, start=BASE, step_s=0)
        await _add_influencers(ctx, 45, start=BASE - timedelta(hours=1), step_s=60)
        ids, pages = await _walk_pages(admin_client, "/admin/influencers")
        assert len(pages) == 3
        assert list(dict.fromkeys(ids)) == await _newest_first(ctx)
        assert ids.count(ids[0]) == 1 and len(ids) == len(set(ids))
        assert ">Newest</a>" not in pages[0] and ">Newest</a>" in pages[1]
        assert 'rel="next"' not in pages[-1]

    async def test_live_status_is_shown_for_the_page(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        [live, idle] = await _add_influencers(ctx, 2, start=BASE, step_s=1)
        stream = {
            "id": uuid.uuid4(),
            "influencer_id": live,
            "provider": "hms",
            "strategy": StreamStrategy.automatic,
            "status": StreamStatus.live,
            "title": "on air",
            "created_at": BASE,
            "updated_at": BASE,
        }
        async with transaction(ctx.database.sessionmaker) as session:
            await session.execute(insert(cast(Table, LiveStream.__table__)), [stream])
        listed = (await admin_client.get("/api/admin/influencers")).json()
        assert {i["id"]: i["live_status"] for i in listed} == {str(live): "live", str(idle): None}

    @pytest.mark.parametrize("cursor", BAD_CURSORS)
    async def test_a_bad_cursor_is_a_400_that_changes_nothing(
        self, ctx: AppState, admin_client: httpx.AsyncClient, cursor: str
    ) -> None:
        await _add_influencers(ctx, 3, start=BASE, step_s=1)
        before = await _stored(ctx)
        api = await admin_client.get("/api/admin/influencers", params={"cursor": cursor})
        assert api.status_code == 400
        assert "Invalid cursor" in api.json()["detail"]
        page = await admin_client.get("/admin/influencers", params={"cursor": cursor})
        assert page.status_code == 400
        assert "Invalid cursor" in page.text
        assert await _stored(ctx) == before

    async def test_a_cursor_past_the_end_is_an_empty_page(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        await _add_influencers(ctx, 3, start=BASE, step_s=1)
        cursor = encode_cursor(BASE - timedelta(days=365), uuid.uuid4())
        response = await admin_client.get("/api/admin/influencers", params={"cursor": cursor})
        assert response.status_code == 200
        assert response.json() == [] and "x-next-cursor" not in response.headers

    async def test_the_index_serves_the_order(self, ctx: AppState) -> None:
        await _add_influencers(ctx, 30, start=BASE, step_s=1)
        engine = ctx.database.engine
        statements: list[tuple[str, Any]] = []

        def remember(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            statements.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", remember)
        try:
            async with transaction(ctx.database.sessionmaker) as session:
                await InfluencerRepository(session).page(limit=51)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", remember)
        sql, parameters = next(s for s in statements if "FROM influencers" in s[0])
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
                details = " ".join(str(row[-1]) for row in plan)
                assert "TEMP B-TREE" not in details, details
            else:
                await connection.execute(text("SET enable_seqscan = off"))
                await connection.execute(text("SET enable_sort = off"))
                plan = await connection.exec_driver_sql("EXPLAIN " + sql, parameters)
                details = " ".join(str(row[0]) for row in plan)
        assert "ix_influencers_created_at_id" in details, details


class TestAuditApi:
    async def test_pages_each_entry_once_with_has_more_and_no_total(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        expected = await _add_audit(ctx, 52, per_instant=4)
        seen: list[str] = []
        params: dict[str, Any] = {"action": "test.entry", "limit": 13}
        while True:
            response = await admin_client.get("/api/admin/audit", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert "total" not in body
            assert body["has_more"] is (body["next_cursor"] is not None)
            seen += [e["id"] for e in body["items"]]
            if not body["has_more"]:
                break
            params["cursor"] = body["next_cursor"]
        # 52 = 4 full pages: the last one is full and says there is no more.
        assert len(body["items"]) == 13
        assert seen == expected

    async def test_no_statement_counts_the_log(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        await _add_audit(ctx, 30, per_instant=1)
        statements: list[str] = []

        def remember(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        engine = ctx.database.engine
        event.listen(engine.sync_engine, "before_cursor_execute", remember)
        try:
            response = await admin_client.get("/api/admin/audit", params={"limit": 10})
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", remember)
        assert response.status_code == 200
        touching = [s for s in statements if "audit_log" in s]
        assert touching and not [s for s in touching if "count(" in s.lower()], touching

    async def test_an_offset_is_a_400_not_page_one_again(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        await _add_audit(ctx, 30, per_instant=1)
        before = await _stored(ctx)
        response = await admin_client.get("/api/admin/audit", params={"offset": 10})
        assert response.status_code == 400
        assert "cursor" in response.json()["detail"]
        assert (await admin_client.get("/api/admin/audit?offset=0")).status_code == 200
        assert await _stored(ctx) == before

    @pytest.mark.parametrize("cursor", BAD_CURSORS)
    async def test_a_bad_cursor_is_a_400_that_changes_nothing(
        self, ctx: AppState, admin_client: httpx.AsyncClient, cursor: str
    ) -> None:
        await _add_audit(ctx, 5, per_instant=1)
        before = await _stored(ctx)
        response = await admin_client.get("/api/admin/audit", params={"cursor": cursor})
        assert response.status_code == 400
        assert "Invalid cursor" in response.json()["detail"]
        page = await admin_client.get("/admin/audit", params={"cursor": cursor})
        assert page.status_code == 400
        assert await _stored(ctx) == before

    async def test_the_page_next_link_walks_the_log(
        self, ctx: AppState, admin_client: httpx.AsyncClient
    ) -> None:
        expected = await _add_audit(ctx, 120, per_instant=7)
        ids, pages = await _walk_pages(admin_client, "/admin/audit?action=test.entry")
        assert len(pages) == 3 and 'rel="next"' not in pages[-1]
        assert ids == expected


async def test_the_lists_are_documented(tmp_path: Any) -> None:
    document = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/unused.db")).openapi()
    influencers = document["paths"]["/api/admin/influencers"]["get"]
    assert {p["name"] for p in influencers["parameters"]} == {"limit", "cursor"}
    assert "X-Next-Cursor" in influencers["responses"]["200"]["headers"]
    audit = document["paths"]["/api/admin/audit"]["get"]
    offset = next(p for p in audit["parameters"] if p["name"] == "offset")
    assert offset["deprecated"] is True
    page = document["components"]["schemas"]["AuditPage"]
    assert "total" not in page["properties"]
    assert set(page["required"]) == {"items", "has_more"}
