"""The local provider end to end: the real app behind uvicorn on loopback, WebSocket clients
playing the broadcaster's and viewers' browsers, events through the inbox into stream facts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from livestage.db import transaction
from livestage.models import (
    ChatRestriction,
    LiveStream,
    ProviderEvent,
    RestrictionKind,
    StreamPeer,
)
from livestage.providers.local.provider import LocalProvider
from livestage.providers.local.tokens import derive_signing_key, mint_join_token
from livestage.streams.viewers import VIEWER_COOKIE
from tests.support.fixtures import (
    InfluencerAccount,
    create_influencer,
    csrf_token,
    login_influencer,
    make_settings,
)
from tests.support.live_server import LiveServer, bind_loopback, fresh_sqlite_url

pytestmark = pytest.mark.asyncio
START = {"title": "Local live", "description": ""}
UNCHECKED_TIMES = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
CAP = 2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    sock = bind_loopback()
    settings = make_settings(
        fresh_sqlite_url(tmp_path),
        provider="local",
        public_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
        cookie_secure=False,
        local_viewer_cap=CAP,
        reconnect_grace_seconds=1,
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=0,
    )
    live = LiveServer(settings, sock=sock).start()
    provider = live.ctx.provider
    assert isinstance(provider, LocalProvider)
    # The room stays open a little after the tracking's grace ended the stream (5 s); shorter
    # here, but not so short that a worker slowed by the full suite ends the stream after the
    # room's close (at 0.5 s the close won once: `session_closed`, not `broadcaster_left`).
    provider.hub.absence_margin = timedelta(seconds=2)
    yield live
    live.stop()


@pytest.fixture
def provider(server: LiveServer) -> LocalProvider:
    chosen = server.ctx.provider
    assert isinstance(chosen, LocalProvider)
    return chosen


@pytest_asyncio.fixture
async def alice(server: LiveServer) -> InfluencerAccount:
    return await server.arun(create_influencer(server.ctx, "alice"))


@pytest_asyncio.fixture
async def studio(server: LiveServer, alice: InfluencerAccount) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await login_influencer(client, alice)
        yield client


@pytest_asyncio.fixture
async def public(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        client.headers["x-csrf-token"] = await csrf_token(client)
        yield client


@pytest_asyncio.fixture
async def live(studio: httpx.AsyncClient) -> dict[str, Any]:
    response = await studio.post("/api/streams", json=START)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def viewer_join(public: httpx.AsyncClient) -> dict[str, Any]:
    """Each call is another viewer, as another browser would be: no viewer cookie kept."""
    public.cookies.delete(VIEWER_COOKIE)
    response = await public.post("/api/watch/alice/join")
    assert response.status_code == 200, response.text
    join: dict[str, Any] = response.json()
    return join


class Browser:
    """One side of the signalling: sends JSON, waits for a given message type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message: dict[str, Any] = json.loads(await self.ws.recv())
                if kind is None or message["type"] == kind:
                    return message

    async def closed(self, timeout: float = 5.0) -> tuple[int, str, list[dict[str, Any]]]:
        """Everything received until the server closed the connection, and how it closed."""
        received = []
        async with asyncio.timeout(timeout):
            try:
                while True:
                    received.append(json.loads(await self.ws.recv()))
            except ConnectionClosed as closed:
                frame = closed.rcvd
        assert frame is not None
        return frame.code, frame.reason, received


def ws_url(server: LiveServer, join: dict[str, Any], **query: str) -> str:
    path = join["signal_url"] if "signal_url" in join else f"/ws/local/{join['room_id']}"
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"ws://127.0.0.1:{server.port}{path}" + (f"?{suffix}" if suffix else "")


async def attempt(server: LiveServer, room_id: str, **hello: Any) -> tuple[int, str, list[Any]]:
    """Connect, optionally send a join message, return how the server closed."""
    query = hello.pop("query", {})
    async with connect(ws_url(server, {"room_id": room_id}, **query)) as ws:
        browser = Browser(ws)
        if hello:
            await browser.send(**hello)
        return await browser.closed(timeout=15)


async def joined(server: LiveServer, join: dict[str, Any], name: str) -> Browser:
    ws = await connect(ws_url(server, join))
    browser = Browser(ws)
    await browser.send(type="join", token=join["token"], name=name)
    browser.welcome = await browser.receive("welcome")
    return browser


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def stream_row(server: LiveServer, stream_id: str) -> LiveStream:
    async def load() -> LiveStream:
        async with server.ctx.database.sessionmaker() as session:
            found = await session.get(LiveStream, uuid.UUID(stream_id))
            assert found is not None
            return found

    return await server.arun(load())


async def peers(server: LiveServer) -> list[StreamPeer]:
    async def load() -> list[StreamPeer]:
        async with server.ctx.database.sessionmaker() as session:
            return list(await session.scalars(select(StreamPeer).order_by(StreamPeer.joined_at)))

    return await server.arun(load())


async def local_events(server: LiveServer) -> list[ProviderEvent]:
    async def load() -> list[ProviderEvent]:
        async with server.ctx.database.sessionmaker() as session:
            statement = select(ProviderEvent).order_by(ProviderEvent.received_at)
            return list(await session.scalars(statement))

    return await server.arun(load())


class TestGoLive:
    async def test_go_live_hands_the_page_a_local_join(
        self, server: LiveServer, live: dict[str, Any], public: httpx.AsyncClient
    ) -> None:
        stream, join = live["stream"], live["join"]
        assert (stream["provider"], stream["strategy"]) == ("local", "automatic")
        assert stream["room_codes"] == {} and stream["room_name"] == "livestage-alice"
        assert join["provider"] == "local"
        assert join["signal_url"] == f"/ws/local/{stream['room_id']}"
        assert join["ice_servers"] == []
        key = derive_signing_key(server.settings.secret_key.get_secret_value())
        claims = jwt.decode(join["token"], key, algorithms=["HS256"], options=UNCHECKED_TIMES)
        assert claims["type"] == "app" and claims["version"] == 2
        assert claims["access_key"] == "local"
        assert (claims["room_id"], claims["role"]) == (stream["room_id"], "broadcaster")
        assert claims["exp"] - claims["iat"] == server.settings.hms_auth_token_ttl_seconds
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(
                join["token"],
                server.settings.secret_key.get_secret_value(),
                algorithms=["HS256"],
                options=UNCHECKED_TIMES,
            )

        watch = await viewer_join(public)
        assert watch["provider"] == "local" and watch["signal_url"] == join["signal_url"]
        assert watch["role"] == "viewer"

    async def test_a_second_click_mints_a_fresh_local_join(
        self, studio: httpx.AsyncClient, live: dict[str, Any]
    ) -> None:
        again = await studio.post("/api/streams", json=START)
        assert again.status_code == 200
        assert again.json()["join"]["provider"] == "local"
        assert again.json()["join"]["signal_url"] == live["join"]["signal_url"]

    async def test_room_codes_are_refused_with_a_clear_message(
        self, studio: httpx.AsyncClient
    ) -> None:
        response = await studio.post(
            "/api/streams/room-code", json={**START, "code": "abc-defg-hij"}
        )
        assert response.status_code == 422
        assert "local provider" in response.json()["detail"]


class TestSignalling:
    async def test_offers_answers_and_candidates_flow_between_broadcaster_and_viewers(
        self, server: LiveServer, live: dict[str, Any], public: httpx.AsyncClient
    ) -> None:
        host = await joined(server, live["join"], "Alice")
        assert host.welcome["role"] == "broadcaster" and host.welcome["peers"] == []
        first = await joined(server, await viewer_join(public), "Viewer one")
        second = await joined(server, await viewer_join(public), "Viewer two")
        assert [p["peer_id"] for p in first.welcome["peers"]] == [host.welcome["peer_id"]]
        arrivals = [await host.receive("peer-joined"), await host.receive("peer-joined")]
        assert [a["peer_id"] for a in arrivals] == [
            first.welcome["peer_id"],
            second.welcome["peer_id"],
        ]
        assert arrivals[0]["name"] == "Viewer one" and arrivals[0]["role"] == "viewer"

        for viewer in (first, second):
            viewer_id = viewer.welcome["peer_id"]
            await host.send(type="offer", to=viewer_id, sdp={"type": "offer", "sdp": viewer_id})
            offer = await viewer.receive("offer")
            assert offer == {
                "type": "offer",
                "from": host.welcome["peer_id"],
                "sdp": {"type": "offer", "sdp": viewer_id},
            }
            await viewer.send(type="answer", to=host.welcome["peer_id"], sdp="v=0 answer")
            answer = await host.receive("answer")
            assert answer == {"type": "answer", "from": viewer_id, "sdp": "v=0 answer"}
            await viewer.send(type="ice", to=host.welcome["peer_id"], candidate={"c": 1})
            assert (await host.receive("ice"))["from"] == viewer_id
            await host.send(type="ice", to=viewer_id, candidate=None)
            assert await viewer.receive("ice") == {
                "type": "ice",
                "from": host.welcome["peer_id"],
                "candidate": None,
            }

        await first.send(type="ice", to=second.welcome["peer_id"], candidate=None)
        assert (await first.receive("error"))["code"] == "forbidden"
        await first.send(type="ping")
        assert await first.receive() == {"type": "pong"}
        await first.ws.send("not json")
        assert (await first.receive("error"))["code"] == "bad_message"
        for browser in (first, second, host):
            await browser.ws.close()

    async def test_a_viewer_who_tries_to_publish_is_refused(
        self, server: LiveServer, live: dict[str, Any], public: httpx.AsyncClient
    ) -> None:
        host = await joined(server, live["join"], "Alice")
        viewer = await joined(server, await viewer_join(public), "Sneaky")
        await viewer.send(type="offer", to=host.welcome["peer_id"], sdp="v=0 publish")
        code, reason, received = await viewer.closed()
        assert (code, reason) == (4403, "viewers cannot publish")
        assert received[-1]["type"] == "error" and received[-1]["code"] == "forbidden"
        left = await host.receive("peer-left")
        assert left["peer_id"] == viewer.welcome["peer_id"]
        assert left["reason"] == "server removed peer"
        await host.ws.close()

    async def test_a_second_broadcaster_is_refused(
        self, server: LiveServer, provider: LocalProvider, live: dict[str, Any]
    ) -> None:
        host = await joined(server, live["join"], "Alice")
        room_id = live["stream"]["room_id"]
        intruder = provider.mint_join_token(room_id=room_id, role="broadcaster", user_id="eve")
        code, reason, received = await attempt(server, room_id, type="join", token=intruder.token)
        assert (code, reason) == (4403, "another broadcaster is live in this room")
        assert received[0]["code"] == "forbidden"
        await host.ws.close()

    async def test_the_viewer_cap(
        self,
        server: LiveServer,
        provider: LocalProvider,
        live: dict[str, Any],
        public: httpx.AsyncClient,
    ) -> None:
        viewers = [await joined(server, await viewer_join(public), f"v{i}") for i in range(CAP)]
        full = await public.post("/api/watch/alice/join")
        assert full.status_code == 409
        assert full.json() == {
            "detail": "This stream is full (2 viewers). Try again in a moment.",
            "code": "stream_full",
        }
        # A token minted before the room filled up meets the same cap at the door.
        room_id = live["stream"]["room_id"]
        late = provider.mint_join_token(room_id=room_id, role="viewer", user_id="viewer-late")
        code, reason, received = await attempt(server, room_id, type="join", token=late.token)
        assert (code, reason) == (4409, "stream is full")
        assert received[0]["message"] == "This stream is full (2 viewers). Try again in a moment."
        await viewers[0].send(type="leave")
        assert (await viewers[0].closed())[0] == 1000
        await eventually(
            lambda: _ok(public.post("/api/watch/alice/join")), what="a free place again"
        )
        for viewer in viewers[1:]:
            await viewer.ws.close()


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


class TestAuthorization:
    """Every participant needs a token this server minted for this room, still valid."""

    @pytest.fixture
    def room_id(self, live: dict[str, Any]) -> str:
        room: str = live["stream"]["room_id"]
        return room

    async def test_no_token(self, server: LiveServer, room_id: str) -> None:
        code, reason, received = await attempt(server, room_id, type="join")
        assert (code, reason) == (4401, "missing token")
        assert received[0]["code"] == "unauthorized"

    async def test_a_first_message_that_is_not_a_join(
        self, server: LiveServer, room_id: str
    ) -> None:
        code, reason, _ = await attempt(server, room_id, type="offer", sdp="v=0")
        assert (code, reason) == (4401, "missing token")

    async def test_an_expired_token(self, server: LiveServer, room_id: str) -> None:
        key = derive_signing_key(server.settings.secret_key.get_secret_value())
        expired = mint_join_token(
            signing_key=key,
            room_id=room_id,
            role="viewer",
            user_id="viewer-old",
            ttl=timedelta(minutes=5),
            now=server.ctx.clock() - timedelta(hours=1),
        )
        code, reason, _ = await attempt(server, room_id, type="join", token=expired)
        assert (code, reason) == (4401, "token expired")

    async def test_a_token_for_another_room(
        self, server: LiveServer, provider: LocalProvider, room_id: str
    ) -> None:
        other = provider.mint_join_token(room_id="0" * 24, role="viewer", user_id="v").token
        code, reason, _ = await attempt(server, room_id, type="join", token=other)
        assert (code, reason) == (4401, "token is for another room")

    async def test_a_garbage_token_in_the_query_string(
        self, server: LiveServer, room_id: str
    ) -> None:
        code, reason, _ = await attempt(server, room_id, query={"token": "garbage"})
        assert (code, reason) == (4401, "malformed token")

    async def test_a_token_signed_with_another_key(self, server: LiveServer, room_id: str) -> None:
        forged = mint_join_token(
            signing_key=derive_signing_key("not the server's secret key"),
            room_id=room_id,
            role="broadcaster",
            user_id="mallory",
            ttl=timedelta(minutes=5),
            now=server.ctx.clock(),
        )
        code, reason, _ = await attempt(server, room_id, type="join", token=forged)
        assert (code, reason) == (4401, "token signature is not valid")

    async def test_a_banned_viewer_with_a_token_from_before_the_ban(
        self, server: LiveServer, provider: LocalProvider, live: dict[str, Any]
    ) -> None:
        room_id = live["stream"]["room_id"]
        token = provider.mint_join_token(room_id=room_id, role="viewer", user_id="viewer-t").token
        await server.arun(_ban(server, live["stream"]["id"], "viewer-t"))

        code, reason, received = await attempt(server, room_id, type="join", token=token)

        assert (code, reason) == (4403, "removed from the stream")
        assert received[0]["message"] == "You are banned from this creator's streams."
        other = provider.mint_join_token(room_id=room_id, role="viewer", user_id="viewer-u")
        fan = await joined(server, {"room_id": room_id, "token": other.token}, "Fan")
        await fan.ws.close()

    async def test_a_room_without_a_live_stream(
        self, server: LiveServer, provider: LocalProvider
    ) -> None:
        room_id = "1" * 24
        token = provider.mint_join_token(room_id=room_id, role="viewer", user_id="v").token
        code, reason, _ = await attempt(server, room_id, type="join", token=token)
        assert (code, reason) == (4404, "stream is not live")


class TestTracking:
    """The hub's events go through the same inbox and handlers as 100ms webhooks."""

    async def test_viewers_come_and_go_and_a_dropped_broadcaster_ends_after_the_grace(
        self,
        server: LiveServer,
        provider: LocalProvider,
        live: dict[str, Any],
        public: httpx.AsyncClient,
    ) -> None:
        stream_id = live["stream"]["id"]
        host = await joined(server, live["join"], "Alice")
        first = await joined(server, await viewer_join(public), "one")
        second = await joined(server, await viewer_join(public), "two")

        async def is_live_with_two() -> bool:
            row = await stream_row(server, stream_id)
            return row.status == "live" and row.current_viewers == 2

        await eventually(is_live_with_two, what="live with two viewers")
        await first.send(type="leave")
        await first.closed()
        await second.ws.close()
        await host.ws.close()  # no leave message: a dropped broadcaster

        async def is_ended() -> bool:
            return (await stream_row(server, stream_id)).status == "ended"

        await eventually(is_ended, what="the end after the grace")
        row = await stream_row(server, stream_id)
        assert row.end_reason == "broadcaster_left"
        assert (row.peak_viewers, row.unique_viewers, row.current_viewers) == (2, 2, 0)

        await eventually(
            lambda: _no_session(server, provider, live["stream"]["room_id"]),
            what="the session to close",
        )
        await provider_flush(server, provider)
        events = await local_events(server)
        assert {e.source for e in events} == {"local"}
        kinds = [e.type for e in events]
        assert kinds[:2] == ["session.open.success", "peer.join.success"]
        assert kinds.count("peer.join.success") == 3
        assert kinds.count("peer.leave.success") == 3
        assert kinds[-1] == "session.close.success"
        assert all(e.processed_at is not None and e.error is None for e in events[:-1])
        session_ids = {e.payload["data"]["session_id"] for e in events}
        assert len(session_ids) == 1
        assert row.session_id in session_ids
        reasons = {p.role + ":" + p.name: p.leave_reason for p in await peers(server)}
        assert reasons == {
            "broadcaster:Alice": "websocket closed",
            "viewer:one": "client request",
            "viewer:two": "websocket closed",
        }

    async def test_a_viewer_who_leaves_before_the_broadcaster_came_ends_nothing(
        self,
        server: LiveServer,
        provider: LocalProvider,
        live: dict[str, Any],
        public: httpx.AsyncClient,
    ) -> None:
        stream_id, room_id = live["stream"]["id"], live["stream"]["room_id"]
        viewer = await joined(server, await viewer_join(public), "early")
        await viewer.send(type="leave")
        await viewer.closed()
        await eventually(
            lambda: _no_session(server, provider, room_id), what="the session to close"
        )
        await provider_flush(server, provider)

        async def processed() -> bool:
            events = await local_events(server)
            return events[-1].type == "session.close.success" and all(
                e.processed_at for e in events
            )

        await eventually(processed, what="the viewer's events to be processed")
        row = await stream_row(server, stream_id)
        assert (row.status, row.end_reason, row.ended_at) == ("starting", None, None)

        await joined(server, live["join"], "Alice")

        async def is_live() -> bool:
            return (await stream_row(server, stream_id)).status == "live"

        await eventually(is_live, what="the broadcaster's join to make it live")

    async def test_ending_the_stream_closes_every_connection(
        self,
        server: LiveServer,
        provider: LocalProvider,
        studio: httpx.AsyncClient,
        live: dict[str, Any],
        public: httpx.AsyncClient,
    ) -> None:
        host = await joined(server, live["join"], "Alice")
        viewer = await joined(server, await viewer_join(public), "one")
        ended = await studio.post("/api/streams/current/end")
        assert ended.status_code == 200 and ended.json()["status"] == "ended"
        for browser in (host, viewer):
            code, reason, received = await browser.closed()
            assert (code, reason) == (1000, "room ended")
            assert {"type": "room-ended", "reason": "ended by broadcaster"} in received
        await provider_flush(server, provider)
        assert [e.type for e in await local_events(server)][-1] == "session.close.success"

        async def processed() -> bool:
            return all(e.processed_at for e in await local_events(server))

        await eventually(processed, what="the events to be processed")
        row = await stream_row(server, live["stream"]["id"])
        assert (row.status, row.end_reason) == ("ended", "broadcaster")
        assert {p.leave_reason for p in await peers(server)} == {"room ended"}
        # The old token opens nothing now.
        code, reason, _ = await attempt(
            server, live["stream"]["room_id"], type="join", token=live["join"]["token"]
        )
        assert (code, reason) == (4404, "stream is not live")


class TestShutdown:
    async def test_stopping_the_server_records_every_leave(
        self, server: LiveServer, live: dict[str, Any], public: httpx.AsyncClient
    ) -> None:
        host = await joined(server, live["join"], "Alice")
        viewer = await joined(server, await viewer_join(public), "one")
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        assert time.monotonic() - started < 4, "a clean, prompt shutdown"
        for browser in (host, viewer):
            assert (await browser.closed())[0] == 1012  # uvicorn: service restart

        engine = create_async_engine(server.settings.database_url)
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(ProviderEvent.type, ProviderEvent.payload).order_by(
                    ProviderEvent.received_at
                )
            )
            stored = [(kind, payload["data"].get("reason")) for kind, payload in rows]
        await engine.dispose()
        assert stored.count(("peer.leave.success", "websocket closed")) == 2
        # The session stays open: a broadcaster back within the grace carries on.
        assert "session.close.success" not in [kind for kind, _ in stored]


async def _no_session(server: LiveServer, provider: LocalProvider, room_id: str) -> bool:
    async def check() -> bool:
        return await provider.hub.session(room_id) is None

    return await server.arun(check())


async def provider_flush(server: LiveServer, provider: LocalProvider) -> None:
    await server.arun(provider.hub.flush())


async def _ban(server: LiveServer, stream_id: str, identity: str) -> None:
    async with transaction(server.ctx.database.sessionmaker) as session:
        stream = await session.get(LiveStream, uuid.UUID(stream_id))
        assert stream is not None
        session.add(
            ChatRestriction(
                influencer_id=stream.influencer_id,
                identity=identity,
                kind=RestrictionKind.ban,
                created_at=server.ctx.clock(),
            )
        )
