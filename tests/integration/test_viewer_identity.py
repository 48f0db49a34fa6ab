"""The viewer identity of SPEC §4 over HTTP: the anonymous viewer cookie, set by the watch page
or the first join, makes every join of one browser the same viewer; a forged cookie is replaced;
a signed-in admin or influencer is their user. Against the 100ms emulator on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from livestage.app import AppState
from livestage.models import Influencer, ViewerJoinBatch
from livestage.streams.repository import ViewerJoinRepository
from livestage.streams.viewers import VIEWER_COOKIE
from livestage.web.csrf import CSRF_COOKIE, CSRF_HEADER
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    AdminAccount,
    FakeClock,
    InfluencerAccount,
    create_influencer,
    csrf_token,
    login_admin,
    login_influencer,
)

pytestmark = pytest.mark.asyncio
START = {"title": "Identity check", "description": ""}
JOIN = "/api/watch/alice/join"


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "hms_max_retries": 1,
        "hms_timeout_seconds": 2,
    }


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def live(client: httpx.AsyncClient, creator: InfluencerAccount) -> InfluencerAccount:
    await login_influencer(client, creator)
    assert (await client.post("/api/streams", json=START)).status_code == 201
    return creator


def browser(app: FastAPI, host: str) -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def join(viewer: httpx.AsyncClient, **options: Any) -> tuple[str, httpx.Response]:
    """The identity the join answered with, checked against the token's own user_id."""
    response = await viewer.post(JOIN, **options)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["user_id"] == body["user_id"]
    return str(body["user_id"]), response


async def intents(ctx: AppState) -> list[str]:
    await ctx.viewing.joins.flush()
    async with ctx.database.sessionmaker() as session:
        streams = (await session.scalars(select(ViewerJoinBatch.stream_id).distinct())).all()
        joins = ViewerJoinRepository(session)
        rows = [intent for stream in streams for intent in await joins.intents_of(stream)]
    return [r.viewer_id for r in sorted(rows, key=lambda r: r.requested_at)]


async def test_the_watch_page_sets_the_cookie_and_every_join_after_is_that_viewer(
    app: FastAPI, ctx: AppState, live: InfluencerAccount
) -> None:
    async with browser(app, "198.51.100.9") as viewer:
        page = await viewer.get("/watch/alice")
        assert VIEWER_COOKIE in page.cookies
        viewer.headers[CSRF_HEADER] = await csrf_token(viewer)
        first, response = await join(viewer)
        assert VIEWER_COOKIE not in response.headers.get("set-cookie", "")
        reloaded = await viewer.get("/watch/alice")
        assert VIEWER_COOKIE not in reloaded.headers.get("set-cookie", "")
        second, _ = await join(viewer)
    assert first == second
    assert first.startswith("viewer-")
    assert await intents(ctx) == [first, first]


async def test_the_first_join_sets_the_cookie_when_no_page_did(
    app: FastAPI, ctx: AppState, live: InfluencerAccount
) -> None:
    async with browser(app, "198.51.100.9") as one, browser(app, "198.51.100.10") as other:
        for viewer in (one, other):
            viewer.headers[CSRF_HEADER] = await csrf_token(viewer)
        first, response = await join(one)
        assert VIEWER_COOKIE in response.cookies
        again, _ = await join(one)
        someone_else, _ = await join(other)
    assert first == again
    assert someone_else != first


async def test_a_tampered_cookie_gets_a_new_identity(
    app: FastAPI, ctx: AppState, live: InfluencerAccount
) -> None:
    async with browser(app, "198.51.100.9") as viewer:
        viewer.headers[CSRF_HEADER] = await csrf_token(viewer)
        original, _ = await join(viewer)

        async def join_with(cookie: str) -> tuple[str, httpx.Response]:
            # An explicit Cookie header: the jar's cookies are not sent with it.
            csrf = viewer.cookies[CSRF_COOKIE]
            header = f"{CSRF_COOKIE}={csrf}; {VIEWER_COOKIE}={cookie}"
            return await join(viewer, headers={"cookie": header})

        value, _, mac = viewer.cookies[VIEWER_COOKIE].rpartition(".")
        forged_id = "viewer-" + "0" * 16
        # The first character of the MAC carries six whole bits: changing it always changes
        # the MAC (a fixed suffix was a no-op when the MAC already ended with it).
        altered_mac = ("B" if mac[0] != "B" else "C") + mac[1:]
        for forged in (f"{forged_id}.{mac}", f"{value}.{altered_mac}", forged_id, "x" * 3000):
            renamed, response = await join_with(forged)
            assert renamed not in (original, forged_id), forged
            assert (await join_with(response.cookies[VIEWER_COOKIE]))[0] == renamed
        assert (await join_with(f"{value}.{mac}"))[0] == original


async def test_a_signed_in_influencer_and_admin_join_as_their_user(
    app: FastAPI,
    ctx: AppState,
    client: httpx.AsyncClient,
    live: InfluencerAccount,
    admin: AdminAccount,
    clock: FakeClock,
) -> None:
    async with ctx.database.sessionmaker() as session:
        influencer = await session.get(Influencer, live.id)
        assert influencer is not None
        user_id = influencer.user_id
    own, response = await join(client)
    assert own == f"user-{user_id}"
    assert VIEWER_COOKIE not in response.cookies
    async with browser(app, "198.51.100.9") as staff:
        staff.headers[CSRF_HEADER] = await csrf_token(staff)
        anonymous, _ = await join(staff)
        await login_admin(staff, admin, clock)
        signed_in, _ = await join(staff)
        assert (await join(staff))[0] == signed_in
    assert signed_in == f"user-{admin.id}"
    assert anonymous.startswith("viewer-")
