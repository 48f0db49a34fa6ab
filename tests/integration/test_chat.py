"""Chat and moderation over HTTP (SPEC §8), against the 100ms emulator on loopback: posting and
its rules, the history, the event stream, moderation and who may do it, the audit rows, the
stream's figures, and a ban that holds at the viewer join."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import event, select

from livestage.app import AppState
from livestage.chat.endpoints import MAX_POST_BYTES
from livestage.models import AuditLog, ChatMessage, Influencer
from livestage.streams.viewers import VIEWER_COOKIE
from livestage.web.csrf import CSRF_HEADER
from tests.support.chat import ChatPage, browser
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
START = {"title": "Chat check", "description": ""}
CHAT = "/api/watch/alice/chat"
JSON_TYPE = {"Content-Type": "application/json"}
BAN_DEADLINE = 2.0


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "hms_max_retries": 1,
        "hms_timeout_seconds": 2,
        "go_live_deadline_seconds": BAN_DEADLINE,
    }


@pytest_asyncio.fixture
async def creator(ctx: AppState) -> InfluencerAccount:
    return await create_influencer(ctx, "alice")


@pytest_asyncio.fixture
async def host(client: httpx.AsyncClient, creator: InfluencerAccount) -> httpx.AsyncClient:
    """Alice, signed in, live."""
    await login_influencer(client, creator)
    response = await client.post("/api/streams", json=START)
    assert response.status_code == 201, response.text
    return client


@contextlib.asynccontextmanager
async def opened_browser(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app, host) as made:
        made.headers[CSRF_HEADER] = await csrf_token(made)
        yield made


@pytest_asyncio.fixture
async def viewer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with opened_browser(app, "198.51.100.9") as made:
        yield made


@pytest_asyncio.fixture
async def other_viewer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with opened_browser(app, "198.51.100.10") as made:
        yield made


async def say(who: httpx.AsyncClient, body: str, name: str | None = "Bea") -> httpx.Response:
    return await who.post(CHAT, json={"body": body, "name": name})


async def said(who: httpx.AsyncClient, body: str, name: str | None = "Bea") -> dict[str, Any]:
    response = await say(who, body, name)
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def chat_state(who: httpx.AsyncClient) -> dict[str, Any]:
    response = await who.get(CHAT)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


async def _until_banned(who: httpx.AsyncClient, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not (await chat_state(who))["you"]["banned"]:
        assert time.monotonic() < deadline, "the ban was not recorded in time"
        await asyncio.sleep(0.05)


async def identity_of(who: httpx.AsyncClient) -> str:
    identity: str = (await chat_state(who))["you"]["identity"]
    return identity


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


async def audit_actions(ctx: AppState) -> list[AuditLog]:
    async with ctx.database.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action.like("chat.%")).order_by(AuditLog.created_at)
        )
        return list(rows)


class TestPosting:
    async def test_viewers_and_the_influencer_post_and_everyone_reads_the_history(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient, other_viewer: httpx.AsyncClient
    ) -> None:
        first = await said(viewer, "hello!", name="  Bea  ")
        await said(host, "welcome, Bea", name="ignored")
        await said(other_viewer, "hi all", name="Cy")
        assert first["author"]["name"] == "Bea"
        assert first["author"]["role"] == "viewer"
        assert first["author"]["identity"].startswith("viewer-")
        assert first["sent_at"].endswith("Z")
        state = await chat_state(other_viewer)
        assert [m["body"] for m in state["messages"]] == ["hello!", "welcome, Bea", "hi all"]
        influencer = state["messages"][1]["author"]
        assert influencer["role"] == "influencer" and influencer["name"] == "Alice"
        assert state["you"]["name"] == "Cy"
        assert state["you"]["can_moderate"] is False
        assert (await chat_state(host))["you"]["can_moderate"] is True

    async def test_the_identity_is_the_viewer_cookie_of_the_join(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        joined = await viewer.post("/api/watch/alice/join")
        assert joined.status_code == 200, joined.text
        message = await said(viewer, "same me")
        assert message["author"]["identity"] == joined.json()["user_id"]

    async def test_a_first_chat_request_sets_the_viewer_cookie(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        response = await viewer.get(CHAT)
        assert VIEWER_COOKIE in response.cookies
        assert (await said(viewer, "x"))["author"]["identity"] == response.json()["you"]["identity"]

    async def test_markup_is_stored_as_text_and_control_characters_go(
        self, ctx: AppState, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        markup = '<img src=x onerror="alert(1)"><script>alert(2)</script> &amp;'
        assert (await said(viewer, markup))["body"] == markup
        assert (await said(viewer, "  a\u0000b\u0007\nc\td  "))["body"] == "ab c d"
        async with ctx.database.sessionmaker() as session:
            bodies = list(await session.scalars(select(ChatMessage.body)))
        assert markup in bodies

    @pytest.mark.parametrize(
        ("body", "name"),
        [
            ("", "Bea"),
            ("   \n\t ", "Bea"),
            ("\u0000", "Bea"),
            ("x" * 501, "Bea"),
            ("ok", None),
            ("ok", ""),
            ("ok", "n" * 41),
            ("ok", " \u0000 "),
        ],
    )
    async def test_bad_messages_and_names_are_refused(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient, body: str, name: str | None
    ) -> None:
        problem(await say(viewer, body, name), 400, "invalid_message")
        assert (await chat_state(viewer))["messages"] == []

    async def test_the_longest_message_and_name_pass(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        message = await said(viewer, "é" * 500, name="n" * 40)
        assert len(message["body"]) == 500 and len(message["author"]["name"]) == 40

    async def test_a_body_longer_than_any_message_is_refused_unread(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        """The longest message, each character as long as JSON writes one (an escaped
        surrogate pair, 12 bytes), passes; a body over MAX_POST_BYTES is a 413, whether its
        Content-Length says so or it comes chunked without one."""
        longest = await said(viewer, "\U0001f600" * 500, name="\U0001f600" * 40)
        assert longest["body"] == "\U0001f600" * 500
        padded = json.dumps({"body": "hi", "name": "Bea", "pad": " " * MAX_POST_BYTES})
        declared = await viewer.post(CHAT, content=padded.encode(), headers=JSON_TYPE)
        problem(declared, 413, "post_too_large")

        async def chunked() -> AsyncIterator[bytes]:
            for start in range(0, len(padded), 1000):
                yield padded[start : start + 1000].encode()

        streamed = await viewer.post(CHAT, content=chunked(), headers=JSON_TYPE)
        problem(streamed, 413, "post_too_large")
        assert [m["body"] for m in (await chat_state(viewer))["messages"]] == [longest["body"]]

    async def test_no_chat_without_a_live_stream(
        self, creator: InfluencerAccount, viewer: httpx.AsyncClient
    ) -> None:
        state = await chat_state(viewer)
        assert state["messages"] == [] and state["slow_mode_seconds"] == 0
        problem(await say(viewer, "anyone?"), 409, "not_live")

    async def test_an_unknown_handle_is_404(self, viewer: httpx.AsyncClient) -> None:
        assert (await viewer.get("/api/watch/nobody/chat")).status_code == 404
        assert (await say(viewer, "hi")).status_code == 404
        response = await viewer.post("/api/watch/nobody/chat", json={"body": "x", "name": "y"})
        assert response.status_code == 404
        response = await viewer.get("/api/watch/nobody/chat/events")
        assert response.status_code == 404

    async def test_a_post_needs_the_csrf_token(self, app: FastAPI, host: httpx.AsyncClient) -> None:
        async with browser(app, "198.51.100.11") as stranger:
            assert (await say(stranger, "no token")).status_code == 403

    async def test_a_body_that_does_not_parse_is_refused_first_as_fastapi_does(
        self, app: FastAPI, host: httpx.AsyncClient
    ) -> None:
        """The post skips FastAPI's body handling: the same answers, before the CSRF check."""
        json_type = {"Content-Type": "application/json"}
        async with browser(app, "198.51.100.12") as stranger:
            broken = await stranger.post(CHAT, content=b'{"body": ', headers=json_type)
            assert broken.status_code == 422, broken.text
            assert broken.json()["errors"] == ["9: JSON decode error"]
            not_utf8 = await stranger.post(CHAT, content=b'["\xff\xfe"]', headers=json_type)
            assert not_utf8.status_code == 400, not_utf8.text
            assert (await stranger.post(CHAT, json=[])).status_code == 403
        async with opened_browser(app, "198.51.100.13") as viewer:
            missing = await viewer.post(CHAT, content=b"", headers=json_type)
            assert missing.status_code == 422
            assert missing.json()["errors"] == ["request: Field required"]
            wrong = await viewer.post(CHAT, json={"body": 5, "name": "Bea"})
            assert wrong.json()["errors"] == ["request: Input should be a valid string"]

    async def test_the_history_is_the_latest_fifty_oldest_first(
        self, host: httpx.AsyncClient
    ) -> None:
        for n in range(55):
            await said(host, f"m{n}")
        bodies = [m["body"] for m in (await chat_state(host))["messages"]]
        assert bodies == [f"m{n}" for n in range(5, 55)]


class TestPace:
    async def test_five_messages_in_ten_seconds_then_wait(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        for n in range(5):
            await said(viewer, f"m{n}")
            clock.advance(seconds=1)
        refused = await say(viewer, "one too many")
        problem(refused, 429, "chat_rate_limited")
        # The first message leaves the window 10 s after it was sent: 5 s from now.
        assert refused.headers["retry-after"] == "5"
        clock.advance(seconds=4)
        problem(await say(viewer, "not yet"), 429, "chat_rate_limited")
        clock.advance(seconds=1)
        await said(viewer, "again")

    async def test_posts_sent_at_once_are_limited_as_if_sent_in_turn(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Each post reads the identity's recent messages only once the one before it has
        committed (PostgreSQL: an advisory lock per identity; SQLite: one writer)."""
        await identity_of(viewer)  # the viewer cookie, so that the posts are one identity's
        answers = await asyncio.gather(*(say(viewer, f"m{n}") for n in range(10)))
        assert sorted(a.status_code for a in answers) == [201] * 5 + [429] * 5
        async with opened_browser(app, "198.51.100.14") as other:
            await said(other, "the pool's connections are all usable after the refusals")

    async def test_the_influencer_is_not_rate_limited(self, host: httpx.AsyncClient) -> None:
        for n in range(12):
            await said(host, f"m{n}")

    async def test_slow_mode_one_message_per_n_seconds(
        self,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        other_viewer: httpx.AsyncClient,
        clock: FakeClock,
    ) -> None:
        response = await host.put(f"{CHAT}/slow-mode", json={"seconds": 30})
        assert response.status_code == 200, response.text
        assert response.json() == {"slow_mode_seconds": 30}
        assert (await chat_state(viewer))["slow_mode_seconds"] == 30
        await said(viewer, "first")
        await said(other_viewer, "someone else")
        clock.advance(seconds=20)
        refused = await say(viewer, "too soon")
        problem(refused, 429, "slow_mode")
        assert refused.headers["retry-after"] == "10"
        await said(host, "the influencer is exempt")
        await said(host, "twice")
        clock.advance(seconds=10)
        await said(viewer, "now")
        assert (await host.put(f"{CHAT}/slow-mode", json={"seconds": 0})).status_code == 200
        await said(viewer, "off again")

    @pytest.mark.parametrize("seconds", [-1, 301, "fast", None])
    async def test_slow_mode_bounds(self, host: httpx.AsyncClient, seconds: object) -> None:
        response = await host.put(f"{CHAT}/slow-mode", json={"seconds": seconds})
        assert response.status_code == 422, response.text


class TestModeration:
    async def test_a_timeout_holds_until_its_end(
        self,
        ctx: AppState,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        clock: FakeClock,
    ) -> None:
        identity = (await said(viewer, "rude"))["author"]["identity"]
        response = await host.post(
            f"{CHAT}/restrictions", json={"identity": identity, "kind": "timeout", "minutes": 2}
        )
        assert response.status_code == 201, response.text
        until = response.json()["until"]
        assert response.json()["kind"] == "timeout"
        refused = await say(viewer, "still here")
        problem(refused, 403, "chat_timed_out")
        assert until[:16] in refused.json()["detail"]
        you = (await chat_state(viewer))["you"]
        assert you["restricted_until"] == until and you["banned"] is False
        # A timeout keeps no one from watching.
        assert (await viewer.post("/api/watch/alice/join")).status_code == 200
        clock.advance(minutes=2)
        await said(viewer, "sorry")
        assert (await chat_state(viewer))["you"]["restricted_until"] is None

    async def test_a_ban_refuses_posts_and_joins_across_tokens_until_lifted(
        self,
        ctx: AppState,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        other_viewer: httpx.AsyncClient,
    ) -> None:
        joined = await viewer.post("/api/watch/alice/join")
        identity = joined.json()["user_id"]
        response = await host.post(
            f"{CHAT}/restrictions", json={"identity": identity, "kind": "ban"}
        )
        assert response.status_code == 201, response.text
        assert response.json() == {"identity": identity, "kind": "ban", "until": None}
        problem(await say(viewer, "let me back"), 403, "chat_banned")
        problem(await viewer.post("/api/watch/alice/join"), 403, "banned")
        # A new CSRF token, the same cookie: still the same identity, still banned.
        viewer.headers[CSRF_HEADER] = await csrf_token(viewer)
        problem(await viewer.post("/api/watch/alice/join"), 403, "banned")
        assert (await chat_state(viewer))["you"]["banned"] is True
        assert (await other_viewer.post("/api/watch/alice/join")).status_code == 200
        lifted = await host.delete(f"{CHAT}/restrictions/{identity}")
        assert lifted.status_code == 204
        assert (await viewer.post("/api/watch/alice/join")).status_code == 200
        await said(viewer, "thanks")

    async def test_a_first_join_reads_no_ban_and_a_returning_one_does(
        self, ctx: AppState, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        """No ban can name an identity made for this very join (every join of a flash crowd):
        its ban is not read; the same viewer joining again, with the cookie, is checked."""
        statements: list[str] = []

        def remember(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        engine = ctx.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", remember)
        try:
            assert (await viewer.post("/api/watch/alice/join")).status_code == 200
            first = [s for s in statements if "chat_restrictions" in s]
            statements.clear()
            assert (await viewer.post("/api/watch/alice/join")).status_code == 200
            again = [s for s in statements if "chat_restrictions" in s]
        finally:
            event.remove(engine, "before_cursor_execute", remember)
        assert first == []
        assert len(again) == 1

    async def test_a_signed_in_user_banned_stays_banned_in_a_new_session(
        self, app: FastAPI, ctx: AppState, host: httpx.AsyncClient
    ) -> None:
        bob = await create_influencer(ctx, "bob")
        async with ctx.database.sessionmaker() as session:
            record = await session.get(Influencer, bob.id)
            assert record is not None
            identity = f"user-{record.user_id}"
        response = await host.post(
            f"{CHAT}/restrictions", json={"identity": identity, "kind": "ban"}
        )
        assert response.status_code == 201, response.text
        for attempt in range(2):
            async with browser(app, f"198.51.100.{20 + attempt}") as bobs:
                await login_influencer(bobs, bob)
                problem(await bobs.post("/api/watch/alice/join"), 403, "banned")
                problem(await say(bobs, "hi"), 403, "chat_banned")

    async def test_a_ban_removes_the_viewer_from_the_media_room(
        self,
        ctx: AppState,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        other_viewer: httpx.AsyncClient,
        emulator: EmulatorHandle,
    ) -> None:
        room_id = (await host.get("/api/streams/current")).json()["stream"]["room_id"]
        tokens = {}
        for who in (viewer, other_viewer):
            joined = (await who.post("/api/watch/alice/join")).json()
            emulator.control.join_peer(room_id, token=joined["token"])
            tokens[joined["user_id"]] = joined["token"]
        banned, kept = list(tokens)
        assert ctx.provider is not None
        assert {p.user_id for p in await ctx.provider.list_peers(room_id)} >= {banned, kept}
        response = await host.post(f"{CHAT}/restrictions", json={"identity": banned, "kind": "ban"})
        assert response.status_code == 201, response.text
        users = {p.user_id for p in await ctx.provider.list_peers(room_id)}
        assert banned not in users and kept in users

    async def test_a_ban_while_100ms_hangs_holds_up_no_one(
        self,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        other_viewer: httpx.AsyncClient,
        emulator: EmulatorHandle,
    ) -> None:
        """The ban is recorded in a transaction of its own; 100ms is asked with none open, so
        on SQLite (one writer) the chat goes on while 100ms hangs."""
        room_id = (await host.get("/api/streams/current")).json()["stream"]["room_id"]
        joined = (await viewer.post("/api/watch/alice/join")).json()
        emulator.control.join_peer(room_id, token=joined["token"])
        emulator.control.queue_fault("/v2/active-rooms", kind="latency", seconds=30, count=10)
        body = {"identity": joined["user_id"], "kind": "ban"}
        started = time.monotonic()
        banning = asyncio.create_task(host.post(f"{CHAT}/restrictions", json=body))
        await asyncio.sleep(0.5)
        assert not banning.done()
        posted_at = time.monotonic()
        await said(other_viewer, "still chatting")
        assert time.monotonic() - posted_at < 1.5
        # On a loaded machine the post can take the one writer before the ban does; the ban
        # is still committed long before 100ms answers.
        await _until_banned(viewer, within=5.0)
        problem(await viewer.post("/api/watch/alice/join"), 403, "banned")
        response = await banning
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < BAN_DEADLINE + 3

    async def test_delete_hides_a_message_from_the_history(
        self, ctx: AppState, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        gone = await said(viewer, "spam")
        await said(viewer, "fine")
        assert (await host.delete(f"/api/chat/messages/{gone['id']}")).status_code == 204
        assert [m["body"] for m in (await chat_state(viewer))["messages"]] == ["fine"]
        # Again: nothing more to do.
        assert (await host.delete(f"/api/chat/messages/{gone['id']}")).status_code == 204
        async with ctx.database.sessionmaker() as session:
            kept = await session.get(ChatMessage, uuid.UUID(gone["id"]))
        assert kept is not None and kept.deleted_at is not None and kept.deleted_by is not None

    async def test_an_unknown_message_is_404(self, host: httpx.AsyncClient) -> None:
        missing = "/api/chat/messages/00000000-0000-0000-0000-000000000000"
        assert (await host.delete(missing)).status_code == 404

    @pytest.mark.parametrize(
        "body",
        [
            {"identity": "someone", "kind": "ban"},
            {"identity": "viewer-0123456789abcdef", "kind": "timeout"},
        ],
    )
    async def test_bad_restrictions_are_refused(
        self, host: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        problem(await host.post(f"{CHAT}/restrictions", json=body), 400, "invalid_restriction")

    @pytest.mark.parametrize("minutes", [0, 1441, "long"])
    async def test_timeout_bounds(self, host: httpx.AsyncClient, minutes: object) -> None:
        body = {"identity": "viewer-0123456789abcdef", "kind": "timeout", "minutes": minutes}
        assert (await host.post(f"{CHAT}/restrictions", json=body)).status_code == 422

    async def test_the_creator_cannot_be_restricted_on_their_own_chat(
        self, host: httpx.AsyncClient
    ) -> None:
        identity = (await said(host, "me"))["author"]["identity"]
        body = {"identity": identity, "kind": "ban"}
        problem(await host.post(f"{CHAT}/restrictions", json=body), 400, "invalid_restriction")

    async def test_viewers_and_other_influencers_cannot_moderate(
        self, app: FastAPI, ctx: AppState, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        message = await said(viewer, "hello")
        target = {"identity": message["author"]["identity"], "kind": "ban"}
        bob = await create_influencer(ctx, "bob")
        async with browser(app, "198.51.100.30") as bobs:
            await login_influencer(bobs, bob)
            for who in (viewer, bobs):
                calls = [
                    who.delete(f"/api/chat/messages/{message['id']}"),
                    who.post(f"{CHAT}/restrictions", json=target),
                    who.delete(f"{CHAT}/restrictions/{target['identity']}"),
                    who.put(f"{CHAT}/slow-mode", json={"seconds": 10}),
                ]
                for call in calls:
                    problem(await call, 403, "not_moderator")
        assert [m["body"] for m in (await chat_state(viewer))["messages"]] == ["hello"]
        await said(viewer, "still allowed")
        assert await audit_actions(ctx) == []

    async def test_an_admin_moderates_any_stream_and_every_action_is_audited(
        self,
        app: FastAPI,
        ctx: AppState,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        admin: AdminAccount,
        clock: FakeClock,
    ) -> None:
        message = await said(viewer, "hello")
        identity = message["author"]["identity"]
        async with browser(app, "198.51.100.40") as staff:
            await login_admin(staff, admin, clock)
            assert (await staff.delete(f"/api/chat/messages/{message['id']}")).status_code == 204
            body = {"identity": identity, "kind": "timeout", "minutes": 5}
            assert (await staff.post(f"{CHAT}/restrictions", json=body)).status_code == 201
            assert (await staff.delete(f"{CHAT}/restrictions/{identity}")).status_code == 204
            assert (await staff.put(f"{CHAT}/slow-mode", json={"seconds": 5})).status_code == 200
            posted = await said(staff, "admin here")
            assert posted["author"]["role"] == "admin" and posted["author"]["name"] == "Root"
        await host.post(f"{CHAT}/restrictions", json={"identity": identity, "kind": "ban"})
        rows = await audit_actions(ctx)
        assert [r.action for r in rows] == [
            "chat.message_deleted",
            "chat.timeout",
            "chat.restriction_lifted",
            "chat.slow_mode",
            "chat.ban",
        ]
        assert [r.actor_email for r in rows] == [admin.email] * 4 + ["alice@example.com"]
        assert rows[0].target_id == message["id"] and rows[1].target_id == identity
        assert rows[3].details["seconds"] == 5

    async def test_slow_mode_needs_a_live_stream(
        self, client: httpx.AsyncClient, creator: InfluencerAccount
    ) -> None:
        await login_influencer(client, creator)
        problem(await client.put(f"{CHAT}/slow-mode", json={"seconds": 5}), 409, "not_live")


class TestFigures:
    async def test_the_stream_record_counts_messages_and_chatters(
        self,
        app: FastAPI,
        admin: AdminAccount,
        clock: FakeClock,
        host: httpx.AsyncClient,
        viewer: httpx.AsyncClient,
        other_viewer: httpx.AsyncClient,
    ) -> None:
        for who, body in [(viewer, "a"), (viewer, "b"), (other_viewer, "c"), (host, "d")]:
            await said(who, body)
        gone = await said(viewer, "e")
        await host.delete(f"/api/chat/messages/{gone['id']}")
        problem(await say(viewer, ""), 400, "invalid_message")
        stream = (await host.get("/api/streams/current")).json()["stream"]
        assert stream["chat_messages"] == 5
        assert stream["chatters"] == 3
        async with browser(app, "198.51.100.50") as staff:
            await login_admin(staff, admin, clock)
            page = (await staff.get(f"/admin/streams/{stream['id']}")).text
            listed = (await staff.get(f"/api/admin/streams/{stream['id']}")).json()
        assert 'data-testid="stat-chat-messages">5<' in page
        assert 'data-testid="stat-chatters">3<' in page
        assert listed["stream"]["chat_messages"] == 5 and listed["stream"]["chatters"] == 3

    async def test_metrics_count_messages(
        self, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        def posted(text: str) -> float:
            for line in text.splitlines():
                if line.startswith("livestage_chat_messages_total "):
                    return float(line.split()[1])
            raise AssertionError("no livestage_chat_messages_total in /metrics")

        before = posted((await host.get("/metrics")).text)
        await said(viewer, "one")
        await said(host, "two")
        problem(await say(viewer, ""), 400, "invalid_message")
        assert posted((await host.get("/metrics")).text) == before + 2


class TestEvents:
    async def test_history_first_then_every_change_in_order(
        self, app: FastAPI, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        await said(viewer, "before")
        async with ChatPage(app, "alice") as page:
            assert page.status == 200
            history = page.named("history")[0]
            assert [m["body"] for m in history["messages"]] == ["before"]
            assert history["slow_mode_seconds"] == 0
            sent = [await said(viewer, f"m{n}") for n in range(3)]
            await host.put(f"{CHAT}/slow-mode", json={"seconds": 7})
            await host.delete(f"/api/chat/messages/{sent[1]['id']}")
            identity = sent[0]["author"]["identity"]
            await host.post(f"{CHAT}/restrictions", json={"identity": identity, "kind": "ban"})
            await page.wait_for(lambda: page.named("restricted"))
        assert page.events[1:] == [
            ("message", sent[0]),
            ("message", sent[1]),
            ("message", sent[2]),
            ("settings", {"slow_mode_seconds": 7}),
            ("deleted", {"id": sent[1]["id"]}),
            ("restricted", {"identity": identity, "kind": "ban", "until": None}),
        ]

    async def test_a_reconnect_gets_the_history_again(
        self, app: FastAPI, host: httpx.AsyncClient, viewer: httpx.AsyncClient
    ) -> None:
        async with ChatPage(app, "alice") as page:
            await said(viewer, "while open")
            await page.wait_for(lambda: page.named("message"))
        await said(viewer, "while away")
        async with ChatPage(app, "alice") as again:
            history = again.named("history")[0]
        assert [m["body"] for m in history["messages"]] == ["while open", "while away"]

    async def test_a_page_with_nothing_live_gets_the_stream_s_messages_once_it_starts(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        creator: InfluencerAccount,
        viewer: httpx.AsyncClient,
    ) -> None:
        async with ChatPage(app, "alice") as page:
            assert page.named("history") == [{"messages": [], "slow_mode_seconds": 0}]
            await login_influencer(client, creator)
            assert (await client.post("/api/streams", json=START)).status_code == 201
            message = await said(viewer, "first!")
            await page.wait_for(lambda: page.named("message"))
        assert page.named("message") == [message]
