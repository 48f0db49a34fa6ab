"""The Content-Security-Policy: on every page, and pages written so that it costs them nothing
(no inline script or style, no `style=` attribute, no `on…=` handler). Every page a person can
open is fetched as the person who opens it, with a stream live, and its HTML parsed.

The policy itself, built from the settings, is tested in tests/unit/test_csp_policy.py."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from livestage.app import AppState
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
from tests.support.hms_events import SessionScript

pytestmark = pytest.mark.asyncio

SCRIPT_TYPES_NOT_RUN = {"application/json"}


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "worker_enabled": False,
    }


class InlineCode(HTMLParser):
    """What in a page the policy would refuse: inline scripts, `<style>`, `style=`, `on…=`,
    `javascript:` URLs, and scripts or stylesheets from another origin."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and value.strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script":
            src, kind = values.get("src"), values.get("type", "").lower()
            if src is None and kind not in SCRIPT_TYPES_NOT_RUN:
                self.found.append(f"inline <script type={kind!r}>")
            if src is not None and not _same_origin(src):
                self.found.append(f"<script src={src!r}>")
        if (
            tag == "link"
            and "stylesheet" in values.get("rel", "")
            and not _same_origin(values.get("href", ""))
        ):
            self.found.append(f"<link rel=stylesheet href={values.get('href')!r}>")


def _same_origin(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


def refused_inline(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest_asyncio.fixture
async def people(app: FastAPI) -> Any:
    opened: list[httpx.AsyncClient] = []

    def new() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        opened.append(client)
        return client

    yield new
    for client in opened:
        await client.aclose()


@pytest_asyncio.fixture
async def scene(
    people: Any, ctx: AppState, admin: AdminAccount, clock: FakeClock
) -> dict[str, Any]:
    """An admin, and alice live with two viewers in her room (real webhooks, applied)."""
    admin_http, alice_http, anonymous = people(), people(), people()
    await login_admin(admin_http, admin, clock)
    alice: InfluencerAccount = await create_influencer(ctx, "alice")
    await login_influencer(alice_http, alice)
    response = await alice_http.post("/api/streams", json={"title": "Jam", "description": ""})
    assert response.status_code == 201, response.text
    stream = response.json()["stream"]
    script = SessionScript(room_id=stream["room_id"], room_name="livestage-alice")
    t0 = clock()
    events = [
        script.open(t0),
        script.join("p-host", "alice-host", "broadcaster", t0),
        script.join("p-1", "w1", "viewer", t0 + timedelta(seconds=5)),
    ]
    for event in events:
        delivered = await anonymous.post(
            "/webhooks/100ms",
            json=event,
            headers={WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret},
        )
        assert delivered.status_code == 200, delivered.text
    assert ctx.ingestion.worker is not None
    await ctx.ingestion.worker.drain()
    return {
        "admin": admin_http,
        "alice": alice_http,
        "anonymous": anonymous,
        "stream_id": stream["id"],
        "alice_id": str(alice.id),
    }


def pages(scene: dict[str, Any]) -> list[tuple[str, str]]:
    """(who, path) for every page: public, sign-in, influencer, admin, analytics, docs."""
    stream, alice = scene["stream_id"], scene["alice_id"]
    return [
        ("anonymous", "/"),
        ("anonymous", "/live"),
        ("anonymous", "/watch/alice"),
        ("anonymous", "/watch/nobody"),
        ("anonymous", "/login"),
        ("anonymous", "/admin/login"),
        ("anonymous", "/docs"),
        ("anonymous", "/no-such-page"),
        ("alice", "/influencer/live"),
        ("alice", "/influencer/streams"),
        ("alice", f"/influencer/streams/{stream}"),
        ("admin", "/admin/influencers"),
        ("admin", f"/admin/influencers/{alice}"),
        ("admin", "/admin/streams"),
        ("admin", f"/admin/streams/{stream}"),
        ("admin", "/admin/audit"),
    ]


async def test_every_page_carries_the_policy_and_no_inline_code(scene: dict[str, Any]) -> None:
    problems: dict[str, list[str]] = {}
    for who, path in pages(scene):
        response = await scene[who].get(path, headers={"accept": "text/html"})
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
        found = refused_inline(response.text)
        policy = response.headers.get("content-security-policy", "")
        if not ("script-src 'self'" in policy and "style-src 'self'" in policy):
            found.append(f"policy: {policy!r}")
        if "unsafe" in policy:
            found.append(f"unsafe policy: {policy!r}")
        if found:
            problems[path] = found
    assert problems == {}


async def test_a_failed_sign_in_page_has_no_inline_code(people: Any) -> None:
    anonymous = people()
    form = await anonymous.get("/login")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = await anonymous.post(
        "/login", data={"email": "nobody@example.com", "password": "wrong", "csrf_token": token}
    )
    assert response.status_code >= 400 and "content-security-policy" in response.headers
    assert refused_inline(response.text) == []


async def test_static_answers_carry_the_policy_and_json_a_stricter_one(people: Any) -> None:
    anonymous = people()
    for path in ("/static/app.css", "/static/swagger-ui/swagger-ui-bundle.js"):
        response = await anonymous.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
    for path in ("/api/live", "/api/live/nobody", "/healthz"):
        response = await anonymous.get(path)
        assert response.headers["content-type"] == "application/json", path
        policy = response.headers["content-security-policy"]
        assert policy == "default-src 'none'; frame-ancestors 'none'", path


async def test_docs_is_served_by_livestage_alone(people: Any) -> None:
    anonymous = people()
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    parser = _Assets()
    parser.feed(page.text)
    assert parser.urls, page.text
    for url in parser.urls:
        assert _same_origin(url), url
        asset = await anonymous.get(url)
        assert asset.status_code == 200 and len(asset.content) > 0, url
    assert (await anonymous.get("/openapi.json")).status_code == 200
    assert (await anonymous.get("/redoc")).status_code == 404


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (tag, name) in {("script", "src"), ("link", "href")}:
                self.urls.append(value)
