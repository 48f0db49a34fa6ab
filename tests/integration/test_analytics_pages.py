"""Stream analytics pages (/admin/streams, /influencer/streams): numbers from real webhooks,
ownership, roles. SQLite and PostgreSQL.

Pages are checked mostly through the template and context Starlette reports (the
`http.response.debug` ASGI extension the TestClient uses), with a few checks on the HTML.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from livestage.analytics.pages import format_duration, format_when_precise
from livestage.app import AppState
from livestage.models.keyset import encode_cursor
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    AdminAccount,
    FakeClock,
    InfluencerAccount,
    create_influencer,
    login_admin,
    login_influencer,
)
from tests.support.hms_events import SessionScript, visit

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "worker_enabled": False,
    }


# Template capture --------------------------------------------------------------------------


@dataclass
class Rendered:
    template: str
    context: dict[str, Any]


@dataclass
class TemplateCapture:
    """ASGI wrapper: Starlette reports each TemplateResponse's template and context."""

    app: FastAPI
    rendered: list[Rendered] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = {**scope.get("extensions", {}), "http.response.debug": {}}
            scope = {**scope, "extensions": extensions}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.debug":
                info = message["info"]
                self.rendered.append(Rendered(info["template"].name, info["context"]))
                return
            await send(message)

        await self.app(scope, receive, capture)

    @property
    def last(self) -> Rendered:
        return self.rendered[-1]


@dataclass
class Browser:
    """One person's cookies, and the pages they were shown."""

    http: httpx.AsyncClient
    pages: TemplateCapture

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)


@dataclass
class Clients:
    """Makes one client per person (own cookies); closes them all at the end."""

    app: FastAPI
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    def new(self) -> Browser:
        capture = TemplateCapture(self.app)
        transport = httpx.ASGITransport(app=capture, client=("203.0.113.9", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        self.opened.append(client)
        return Browser(client, capture)


@pytest_asyncio.fixture
async def clients(app: FastAPI) -> AsyncIterator[Clients]:
    made = Clients(app)
    yield made
    for client in made.opened:
        await client.aclose()


@pytest_asyncio.fixture
async def admin_web(clients: Clients, admin: AdminAccount, clock: FakeClock) -> Browser:
    who = clients.new()
    await login_admin(who.http, admin, clock)
    return who


async def _influencer(clients: Clients, ctx: AppState, handle: str) -> Browser:
    account: InfluencerAccount = await create_influencer(ctx, handle)
    who = clients.new()
    await login_influencer(who.http, account)
    return who


@pytest_asyncio.fixture
async def alice(clients: Clients, ctx: AppState) -> Browser:
    return await _influencer(clients, ctx, "alice")


@pytest_asyncio.fixture
async def bob(clients: Clients, ctx: AppState) -> Browser:
    return await _influencer(clients, ctx, "bob")


@pytest.fixture
def anonymous(clients: Clients) -> Browser:
    return clients.new()


async def _go_live(who: Browser, title: str) -> dict[str, Any]:
    response = await who.http.post("/api/streams", json={"title": title, "description": ""})
    assert response.status_code == 201, response.text
    stream: dict[str, Any] = response.json()["stream"]
    return stream


async def _deliver(who: Browser, ctx: AppState, events: list[dict[str, Any]]) -> None:
    headers = {WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret}
    for event in events:
        response = await who.http.post("/webhooks/100ms", json=event, headers=headers)
        assert response.status_code == 200, response.text
    assert ctx.ingestion.worker is not None
    await ctx.ingestion.worker.drain()


@pytest_asyncio.fixture
async def ended_stream(alice: Browser, ctx: AppState, clock: FakeClock) -> dict[str, Any]:
    """Alice's stream: 10 minutes, 5 visits by 4 viewers, peak 2, 431 s watched, then closed."""
    stream = await _go_live(alice, "Friday <jam> & friends")
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
    await _deliver(alice, ctx, events)
    clock.advance(seconds=700)
    return stream


@pytest_asyncio.fixture
async def live_stream(bob: Browser, ctx: AppState, clock: FakeClock) -> dict[str, Any]:
    """Bob's stream, live now: the host and two viewers are in the room."""
    stream = await _go_live(bob, "Bob live")
    t0 = clock()
    script = SessionScript(room_id=stream["room_id"], room_name="livestage-bob")
    events = [
        script.open(t0),
        script.join("p-host", "bob-host", "broadcaster", t0),
        script.join("p-1", "w1", "viewer", t0 + timedelta(seconds=20)),
        script.join("p-2", "w2", "viewer", t0 + timedelta(seconds=70)),
    ]
    await _deliver(bob, ctx, events)
    clock.advance(seconds=130)
    return stream


TRUTH = {"peak_viewers": 2, "unique_viewers": 4, "total_watch_seconds": 431.0}


def _stat(html: str, name: str) -> str:
    found = re.search(rf'data-testid="stat-{name}">(.*?)</dd>', html, re.S)
    assert found is not None, f"no stat {name}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


# The pages ---------------------------------------------------------------------------------


class TestAdminStreamList:
    async def test_every_stream_with_its_numbers(
        self, admin_web: Browser, ended_stream: dict[str, Any], live_stream: dict[str, Any]
    ) -> None:
        response = await admin_web.get("/admin/streams")
        assert response.status_code == 200
        page = admin_web.pages.last
        assert page.template == "analytics/admin_streams.html"
        rows = {str(s.id): s for s in page.context["streams"]}
        assert set(rows) == {ended_stream["id"], live_stream["id"]}
        ended = rows[ended_stream["id"]]
        assert (ended.status, ended.duration_seconds, ended.end_reason) == (
            "ended",
            600,
            "session_closed",
        )
        assert {k: getattr(ended, k) for k in TRUTH} == TRUTH
        assert rows[live_stream["id"]].status == "live"
        assert page.context["next_cursor"] is None

        html = response.text
        row = re.search(rf'<tr data-stream-id="{ended_stream["id"]}">(.*?)</tr>', html, re.S)
        assert row is not None
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
        ]
        # Creator, title (escaped, never raw HTML), status, strategy | started | the numbers.
        assert cells[:4] == ["@alice", "Friday &lt;jam&gt; &amp; friends", "ended", "automatic"]
        assert cells[4].endswith(" UTC")
        assert cells[5:] == ["10:00", "2", "4", "7:11", "1:47"]
        assert f'href="/admin/streams/{ended_stream["id"]}"' in html
        live_row = re.search(rf'<tr data-stream-id="{live_stream["id"]}">(.*?)</tr>', html, re.S)
        assert live_row is not None and "2:10 so far" in live_row.group(1)

    async def test_filters_by_status_and_creator(
        self, admin_web: Browser, ended_stream: dict[str, Any], live_stream: dict[str, Any]
    ) -> None:
        async def ids(query: str) -> list[str]:
            response = await admin_web.get(f"/admin/streams{query}")
            assert response.status_code == 200, response.text
            return [str(s.id) for s in admin_web.pages.last.context["streams"]]

        assert await ids("?status=live") == [live_stream["id"]]
        assert await ids("?status=ended") == [ended_stream["id"]]
        assert await ids("?status=failed") == []
        assert await ids("?handle=alice") == [ended_stream["id"]]
        assert await ids("?handle=%40BOB&status=") == [live_stream["id"]]
        assert await ids("?handle=nobody") == []
        filters = admin_web.pages.last.context["filters"]
        assert filters == {"status": "", "handle": "nobody"}
        response = await admin_web.get("/admin/streams?status=live")
        assert '<option value="live" selected>' in response.text

    async def test_bad_filters_are_a_400_page(self, admin_web: Browser) -> None:
        for query in ("?status=paused", "?handle=" + "x" * 41, "?cursor=" + "a" * 201):
            response = await admin_web.get(f"/admin/streams{query}")
            assert response.status_code == 400, query
            assert admin_web.pages.last.template == "error.html"
            assert "Invalid input" in response.text
        response = await admin_web.get("/admin/streams?cursor=x")
        assert response.status_code == 400
        assert admin_web.pages.last.template == "error.html"
        assert "Invalid cursor" in response.text

    async def test_past_the_last_stream_is_empty_with_a_way_back(
        self, admin_web: Browser, ended_stream: dict[str, Any]
    ) -> None:
        # The cursor of the oldest stream shown: nothing is older.
        first = await admin_web.get("/admin/streams?handle=alice")
        assert first.status_code == 200
        [oldest] = admin_web.pages.last.context["streams"]
        cursor = encode_cursor(oldest.created_at, oldest.id)
        response = await admin_web.get(f"/admin/streams?handle=alice&cursor={cursor}")
        assert response.status_code == 200
        assert admin_web.pages.last.context["streams"] == []
        assert 'href="?status=&handle=alice">Newest</a>' in response.text


class TestAdminStreamDetail:
    async def test_timeline_numbers_chart_and_participants(
        self, admin_web: Browser, ended_stream: dict[str, Any]
    ) -> None:
        response = await admin_web.get(f"/admin/streams/{ended_stream['id']}")
        assert response.status_code == 200
        page = admin_web.pages.last
        assert page.template == "analytics/stream.html"
        assert page.context["audience"] == "admin"
        detail = page.context["detail"]
        assert {k: getattr(detail.stream, k) for k in TRUTH} == TRUTH
        assert len(detail.peers) == 6
        assert max(s.viewers for s in detail.viewers_per_minute) == 2

        html = response.text
        assert _stat(html, "duration") == "10:00"
        assert _stat(html, "peak") == "2"
        assert _stat(html, "unique") == "4"
        assert _stat(html, "watch-total") == "7:11"
        assert _stat(html, "watch-average") == "1:47"
        assert 'data-testid="stat-current"' not in html  # only while live
        assert "<h1>Friday &lt;jam&gt; &amp; friends" in html

        timeline = re.search(r'data-testid="timeline">(.*?)</dl>', html, re.S)
        assert timeline is not None
        facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", timeline.group(1), re.S))
        assert facts["Created"] == format_when_precise(detail.stream.created_at)
        assert facts["Started"] == format_when_precise(detail.stream.started_at)
        assert facts["Ended"] == format_when_precise(detail.stream.ended_at)
        assert facts["End reason"].startswith("the provider closed the session")

        svg = re.search(r"<svg .*?</svg>", html, re.S)
        assert svg is not None
        assert 'role="img"' in svg.group(0)
        assert '<g class="chart-max" data-value="2">' in svg.group(0)
        assert '<title id="viewers-chart-title">Viewers over time</title>' in svg.group(0)
        assert f'data-points="{len(detail.viewers_per_minute)}"' in svg.group(0)

        participants = re.search(r'data-testid="participants">(.*?)</table>', html, re.S)
        assert participants is not None
        rows = re.findall(r"<tr data-peer-id=.*?</tr>", participants.group(1), re.S)
        assert len(rows) == 6
        assert "<th>User id</th>" in participants.group(1)
        assert "<code>v1</code>" in participants.group(1)
        assert participants.group(1).count("client request") == 6
        assert "(host)" in rows[0]

    async def test_a_live_stream_shows_current_viewers_and_follows_updates(
        self, admin_web: Browser, live_stream: dict[str, Any]
    ) -> None:
        response = await admin_web.get(f"/admin/streams/{live_stream['id']}")
        assert response.status_code == 200
        html = response.text
        assert _stat(html, "current") == "2"
        assert _stat(html, "peak") == "2"
        assert _stat(html, "duration") == "2:10 so far"
        assert '<span class="badge live">live</span>' in html
        config = re.search(r'id="page-config">(.*?)</script>', html, re.S)
        assert config is not None
        assert '"handle": "bob"' in config.group(1)
        assert f'"streamId": "{live_stream["id"]}"' in config.group(1)
        assert '<script type="module" src="/static/js/analytics-stream.js"></script>' in html
        assert html.count("still here") == 3

    async def test_unknown_stream_is_a_404_page(self, admin_web: Browser) -> None:
        response = await admin_web.get("/admin/streams/00000000-0000-4000-8000-000000000000")
        assert response.status_code == 404
        assert admin_web.pages.last.template == "error.html"
        malformed = await admin_web.get("/admin/streams/not-a-uuid")
        assert malformed.status_code == 400

    async def test_the_influencer_admin_page_links_to_their_streams(
        self, admin_web: Browser, alice: Browser
    ) -> None:
        listed = (await admin_web.http.get("/api/admin/influencers")).json()
        alice = next(i for i in listed if i["handle"] == "alice")
        response = await admin_web.get(f"/admin/influencers/{alice['id']}")
        assert 'href="/admin/streams?handle=alice"' in response.text
        assert '<a href="/admin/streams">Streams</a>' in response.text


class TestInfluencerStreams:
    async def test_own_streams_only_with_their_numbers(
        self, alice: Browser, ended_stream: dict[str, Any], live_stream: dict[str, Any]
    ) -> None:
        response = await alice.get("/influencer/streams")
        assert response.status_code == 200
        page = alice.pages.last
        assert page.template == "analytics/my_streams.html"
        (mine,) = page.context["streams"]
        assert str(mine.id) == ended_stream["id"]
        assert {k: getattr(mine, k) for k in TRUTH} == TRUTH
        assert f'href="/influencer/streams/{ended_stream["id"]}"' in response.text
        assert "Bob live" not in response.text
        assert "<th>Creator</th>" not in response.text
        assert '<a href="/influencer/streams">My streams</a>' in response.text

    async def test_own_stream_detail_with_chart(
        self, alice: Browser, ended_stream: dict[str, Any]
    ) -> None:
        response = await alice.get(f"/influencer/streams/{ended_stream['id']}")
        assert response.status_code == 200
        page = alice.pages.last
        assert (page.template, page.context["audience"]) == ("analytics/stream.html", "influencer")
        html = response.text
        assert _stat(html, "peak") == "2"
        assert _stat(html, "watch-total") == "7:11"
        assert '<g class="chart-max" data-value="2">' in html
        assert "<th>User id</th>" not in html  # viewers' ids are for admins
        assert 'href="/influencer/streams"' in html

    async def test_another_influencers_stream_is_not_found(
        self, bob: Browser, ended_stream: dict[str, Any]
    ) -> None:
        response = await bob.get(f"/influencer/streams/{ended_stream['id']}")
        assert response.status_code == 404
        assert bob.pages.last.template == "error.html"
        assert "Friday" not in response.text
        api = await bob.http.get(f"/api/streams/mine/{ended_stream['id']}")
        assert api.status_code == 404

    async def test_no_streams_yet(self, bob: Browser) -> None:
        response = await bob.get("/influencer/streams")
        assert response.status_code == 200
        assert bob.pages.last.context["streams"] == []
        assert "No streams yet" in response.text


class TestRoles:
    @pytest.mark.parametrize(
        ("path", "login"),
        [
            ("/admin/streams", "/admin/login"),
            ("/admin/streams/00000000-0000-4000-8000-000000000000", "/admin/login"),
            ("/influencer/streams", "/login"),
            ("/influencer/streams/00000000-0000-4000-8000-000000000000", "/login"),
        ],
    )
    async def test_signed_out_goes_to_the_right_sign_in(
        self, anonymous: Browser, path: str, login: str
    ) -> None:
        response = await anonymous.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"{login}?next=")

    async def test_an_influencer_cannot_open_admin_pages(
        self, alice: Browser, ended_stream: dict[str, Any]
    ) -> None:
        for path in ("/admin/streams", f"/admin/streams/{ended_stream['id']}"):
            response = await alice.get(path)
            assert response.status_code == 403, path
            assert alice.pages.last.template == "error.html"
            assert "Friday" not in response.text

    async def test_an_admin_has_no_influencer_pages(
        self, admin_web: Browser, ended_stream: dict[str, Any]
    ) -> None:
        for path in ("/influencer/streams", f"/influencer/streams/{ended_stream['id']}"):
            response = await admin_web.get(path)
            assert response.status_code == 403, path


class TestFilters:
    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            (None, "—"),
            (0, "0:00"),
            (59.9, "0:59"),
            (61, "1:01"),
            (600, "10:00"),
            (3723, "1:02:03"),
            (36_000, "10:00:00"),
            (-5, "0:00"),
            (timedelta(minutes=2, seconds=5), "2:05"),
        ],
    )
    async def test_duration(self, value: float | timedelta | None, shown: str) -> None:
        assert format_duration(value) == shown
