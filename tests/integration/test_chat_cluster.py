"""Chat across processes: two apps (each its own state, broker and Redis connection, as two
processes have) on one PostgreSQL and one Redis. Every message and moderation event reaches the
open chat pages of both within 1 s, in the order it was posted, whichever process took it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from livestage.app import AppState, create_app
from livestage.config import Settings
from livestage.models import ChatMessage
from livestage.web.csrf import CSRF_HEADER
from tests.support.chat import ChatPage, browser
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    FakeClock,
    InfluencerAccount,
    _psql,
    create_influencer,
    csrf_token,
    login_influencer,
)
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]
CHAT = "/api/watch/alice/chat"


@pytest.fixture
def database_url(postgres_server: PostgresServer, postgres_template: str) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    _psql(postgres_server, f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    return postgres_server.url(name)


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle, redis_url: str) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        **emulator.app_settings(),
        "hms_max_retries": 1,
        "hms_timeout_seconds": 2,
    }


@pytest_asyncio.fixture
async def second_app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@contextlib.asynccontextmanager
async def signed_out(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app, host) as made:
        made.headers[CSRF_HEADER] = await csrf_token(made)
        yield made


async def subscribed(*apps: FastAPI) -> None:
    for app in apps:
        bus = AppState.of(app).chat.bus
        assert bus is not None
        await asyncio.wait_for(bus.subscribed(), 5)


async def go_live(ctx: AppState, client: httpx.AsyncClient) -> None:
    creator: InfluencerAccount = await create_influencer(ctx, "alice")
    await login_influencer(client, creator)
    assert (await client.post("/api/streams", json={"title": "Both"})).status_code == 201


async def test_messages_reach_pages_on_both_processes_within_a_second_in_order(
    app: FastAPI,
    second_app: FastAPI,
    ctx: AppState,
    client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    await go_live(ctx, client)
    await subscribed(app, second_app)
    async with (
        signed_out(app, "198.51.100.1") as on_first,
        signed_out(second_app, "198.51.100.2") as on_second,
        ChatPage(app, "alice") as page_a,
        ChatPage(app, "alice") as page_b,
        ChatPage(second_app, "alice") as page_c,
        ChatPage(second_app, "alice") as page_d,
    ):
        pages = [page_a, page_b, page_c, page_d]
        posted: list[tuple[float, dict[str, Any]]] = []
        for n in range(4):
            for who, name in ((on_first, "Ann"), (on_second, "Ben")):
                response = await who.post(CHAT, json={"body": f"{name} {n}", "name": name})
                assert response.status_code == 201, response.text
                posted.append((time.monotonic(), response.json()))
            # Each sends at most 5 messages per 10 s: another pair of viewers would be needed
            # for more, so the clock moves instead.
            clock.advance(seconds=3)
        gone = posted[2][1]["id"]
        deleted_at = time.monotonic()
        assert (await client.delete(f"/api/chat/messages/{gone}")).status_code == 204
        for page in pages:
            await page.wait_for(lambda page=page: page.named("deleted"), timeout=5)
    expected = [message for _, message in posted]
    for page in pages:
        assert page.named("message") == expected
        arrivals = [at for at, name, _ in page.received if name == "message"]
        delays = [arrived - sent for arrived, (sent, _) in zip(arrivals, posted, strict=True)]
        assert max(delays) < 1.0, delays
        assert page.named("deleted") == [{"id": gone}]
        deleted_seen = next(at for at, name, _ in page.received if name == "deleted")
        assert deleted_seen - deleted_at < 1.0


async def test_messages_posted_at_once_on_both_processes_show_in_one_order_everywhere(
    app: FastAPI, second_app: FastAPI, ctx: AppState, client: httpx.AsyncClient
) -> None:
    """Redis hands every process the channel's messages in one order, the publisher's own
    included, and each message is published before its commit lets the next be numbered:
    pages on different processes show the stream's order, the one the history shows."""
    await go_live(ctx, client)
    await subscribed(app, second_app)
    async with contextlib.AsyncExitStack() as stack:
        viewers = [
            await stack.enter_async_context(signed_out(target, f"198.51.100.{n}"))
            for n, target in enumerate([app, second_app] * 6)
        ]
        pages = [
            await stack.enter_async_context(ChatPage(target, "alice"))
            for target in (app, app, second_app, second_app)
        ]

        async def post(n: int, who: httpx.AsyncClient) -> None:
            response = await who.post(CHAT, json={"body": f"m{n}", "name": f"V{n}"})
            assert response.status_code == 201, response.text

        for round_ in range(3):
            await asyncio.gather(*(post(round_ * 100 + n, v) for n, v in enumerate(viewers)))
        for page in pages:
            await page.wait_for(lambda page=page: len(page.named("message")) == 36)
    orders = [page.bodies() for page in pages]
    assert sorted(orders[0]) == sorted(f"m{r * 100 + n}" for r in range(3) for n in range(12))
    assert all(order == orders[0] for order in orders)
    async with ctx.database.sessionmaker() as session:
        numbered = list(await session.scalars(select(ChatMessage.body).order_by(ChatMessage.seq)))
    assert orders[0] == numbered  # the stream's own order, as the history shows it
