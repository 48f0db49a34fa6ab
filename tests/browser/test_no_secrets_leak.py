"""No secret in any log line, response or database file, over the whole journey, at INFO and at
DEBUG (issue 12).

`livestage serve` runs as a deployer starts it, on a SQLite file, with the local provider (real
camera frames from Chromium's fake camera, signalled over the app's WebSocket) and 100ms
credentials configured (an admin-set 100ms token is checked against the app secret). The
journey: an admin signs in (password and secret key), creates an influencer, sets a 100ms token,
switches streaming off and on; the influencer signs in and goes live; a viewer watches real
frames; 100ms posts a webhook with the webhook secret; the influencer ends the stream; both sign
out. Every secret the run made or saw is then searched for in everything the process wrote, in
every response and WebSocket message each browser got, and in the database files. The same
journey runs once more with the 100ms provider (the emulator, the pages on the fake SDK), where
the server mints management tokens for its calls: no piece of any JWT may reach the log, and no
management token any response.

Nothing a request could present is stored: a session's cookie only as its SHA-256, its CSRF
token not at all (derived from the cookie's token).

Responses: a secret nobody is ever shown (passwords, the secret key, TOTP seed and codes, the app
and webhook secrets, the encryption key, the admin-set token) appears in none, except the
influencer's generated password on the one page that shows it once to the admin. A secret
handed to one party (session cookie, CSRF token, join token) reaches no other party, and a
session cookie reaches its own browser only in its Set-Cookie header.

The scanner checks itself first: a marker sent in a query string must be found in the log, the
stream title in the database, and the generated password in exactly one response.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.async_api import Browser, BrowserContext, Error, Page, Response, WebSocket, expect

from livestage.accounts.service import account as account_service
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.kit.crypto import SecretBox, _derive
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER
from livestage.web.csrf import CSRF_COOKIE
from tests.browser.pages import AdminLoginPage, InfluencersPage
from tests.browser.test_broadcast_and_watch import (
    FAKE_SDK,
    SDK_URL,
    FakeSdk,
    GoLivePage,
    hms_settings,
)
from tests.browser.test_local_video import plays_real_frames
from tests.support import hms_tokens
from tests.support.app_process import ServeProcess, app_environment, migrated_sqlite
from tests.support.browser import TIMEOUT_MS, _loopback_only, replace_module
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import AdminAccount
from tests.support.hms_events import SessionScript
from tests.support.secret_scan import Found, Place, Secrets, jwts, search

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOG = "the process's output"
# A CSRF token as the server hands it over: in JSON, in the page's meta tag, in a form.
CSRF_IN_PAGE = re.compile(
    r'(?:csrf_token"\s*:\s*"|csrf-token" content="|name="csrf_token" value=")([\w-]{16,})'
)
DATABASE = "the database"


@dataclass
class Party:
    """One person's browser: what it was shown (headers, bodies, WebSocket messages)."""

    name: str
    context: BrowserContext
    page: Page
    seen: list[Place] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)
    cookies: set[str] = field(default_factory=set)
    # HttpOnly cookies, but the CSRF one: the page gets that value to send back (double submit).
    hidden_cookies: set[str] = field(default_factory=set)
    _reading: set[asyncio.Task[None]] = field(default_factory=set)

    def attach(self) -> Party:
        self.page.on("response", self._on_response)
        self.page.on("websocket", self._on_websocket)
        return self

    def _on_response(self, response: Response) -> None:
        task = asyncio.ensure_future(self._read(response))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, response: Response) -> None:
        headers = await response.headers_array()
        self.set_cookies += [h["value"] for h in headers if h["name"].lower() == "set-cookie"]
        # Headers other than Set-Cookie: a cookie's own Set-Cookie is where it is meant to be.
        others = "\n".join(
            f"{h['name']}: {h['value']}" for h in headers if h["name"].lower() != "set-cookie"
        )
        body = b""
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            with contextlib.suppress(Error):  # redirects have no body
                body = await response.body()
        where = f"{response.request.method} {response.url} -> {response.status}"
        self.seen.append(Place(self.name, where, others + "\n\n" + body.decode("latin-1")))

    def _on_websocket(self, socket: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            text = payload if isinstance(payload, str) else payload.decode("latin-1")
            self.seen.append(Place(self.name, f"WebSocket {socket.url} message", text))

        socket.on("framereceived", received)

    async def settle(self) -> None:
        while self._reading:
            await asyncio.gather(*list(self._reading), return_exceptions=True)

    async def keep_cookies(self) -> None:
        for cookie in await self.context.cookies():
            if cookie["name"].startswith("livestage_"):
                self.cookies.add(cookie["value"])
                if cookie["name"] != CSRF_COOKIE:
                    self.hidden_cookies.add(cookie["value"])


@contextlib.asynccontextmanager
async def party(browser: Browser, name: str) -> AsyncIterator[Party]:
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    await context.route("**/*", _loopback_only)
    try:
        yield Party(name, context, await context.new_page()).attach()
    finally:
        await context.close()


@dataclass
class Run:
    """One `livestage serve` with its own keys, database and admin."""

    workdir: Path
    level: str
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    hms: tuple[str, str] = field(default_factory=hms_tokens.throwaway_credentials)
    marker: str = field(default_factory=lambda: f"marker{secrets.token_hex(12)}")
    title: str = field(default_factory=lambda: f"Title {secrets.token_hex(12)}")
    emulator: EmulatorHandle | None = None

    def __post_init__(self) -> None:
        if self.emulator is not None:
            self.hms = (self.emulator.access_key, self.emulator.app_secret)

    @property
    def database(self) -> Path:
        return self.workdir / "livestage.db"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"

    def settings(self) -> dict[str, object]:
        return {
            "env": "test",
            "database_url": self.url,
            "secret_key": self.secret_key,
            "cookie_secure": "false",
            "provider": "local",
            "hms_access_key": self.hms[0],
            "hms_app_secret": self.hms[1],
            "webhook_secret": self.webhook_secret,
            "worker_poll_seconds": 0.2,
            "log_level": self.level,
            **(hms_settings(self.emulator) if self.emulator else {}),
        }

    async def create_admin(self) -> AdminAccount:
        settings = Settings(_env_file=None, database_url=self.url, secret_key=self.secret_key)
        engine = create_engine(settings)
        password = secrets.token_urlsafe(12)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                new = await account_service.create_admin(
                    session,
                    SecretBox(settings.secret_keys),
                    email="root@example.com",
                    password=password,
                    name="Root",
                )
        finally:
            await engine.dispose()
        return AdminAccount(new.user.email, password, new.totp_secret, new.user.id)

    def database_text(self) -> str:
        files = sorted(self.workdir.glob("livestage.db*"))
        assert files, "no database file to search"
        return "\n".join(f.read_bytes().decode("latin-1") for f in files)


@contextlib.contextmanager
def serving(run: Run) -> Iterator[ServeProcess]:
    server = ServeProcess(app_environment(**run.settings()), workdir=run.workdir)
    try:
        server.wait_ready("/readyz", timeout=60)
        yield server
    finally:
        server.stop()


class Listener:
    """Someone on the public live-update stream (Server-Sent Events) for the whole journey: a
    browser's copy of a stream's body cannot be read while it is open."""

    name = "an anonymous listener"

    def __init__(self, base: str) -> None:
        self.url = f"{base}/api/live/alice/events"
        self.chunks: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        self._task = asyncio.ensure_future(self._listen())
        return self

    async def _listen(self) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", self.url) as answer,
        ):
            self.chunks.append(f"{answer.headers}\n\n")
            async for chunk in answer.aiter_text():
                self.chunks.append(chunk)

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # it failed: say why
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def place(self) -> Place:
        return Place(self.name, f"GET {self.url} (event stream)", "".join(self.chunks))

    def heard_updates(self) -> bool:
        """Whether the stream's body (not its headers) carried live-update events."""
        body = "".join(self.chunks[1:])
        return "event: stream" in body and "data: " in body


@dataclass
class Journey:
    secrets: Secrets
    parties: list[Party]
    outside: list[Place]
    generated_password: str


async def sign_in_admin(admin_party: Party, base: str, admin: AdminAccount, used: Secrets) -> None:
    login = AdminLoginPage(admin_party.page, base)
    await login.open()
    code = admin.code(datetime.now(UTC))
    used.add("a TOTP code", code)
    await login.sign_in(admin.email, admin.password, code)
    await expect(admin_party.page).to_have_url(f"{base}/admin/influencers")


async def api(page: Page, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A JSON API call from the page, with its session and CSRF token, as an integrator's."""
    answer: dict[str, Any] = await page.evaluate(
        """async ([method, path, body]) => {
            const csrf = document.querySelector('meta[name=csrf-token]').content;
            const r = await fetch(path, {method, body: JSON.stringify(body),
              headers: {'content-type': 'application/json', 'x-csrf-token': csrf}});
            return {status: r.status, body: await r.json()};
        }""",
        [method, path, body],
    )
    return answer


async def admin_prepares_alice(admin_party: Party, base: str, run: Run, used: Secrets) -> str:
    page = admin_party.page
    manage = await InfluencersPage(page, base).create(
        name="Alice", email="alice@example.com", handle="alice"
    )
    await expect(manage.notice).to_have_text("Influencer created.")
    password = (await manage.generated_password.text_content() or "").strip()
    assert len(password) >= 10
    used.add("the influencer's password", password)
    # The created page is the POST's answer: its id is in the streaming form's action.
    action = await page.locator("form[action$='/streaming']").get_attribute("action") or ""
    influencer_id = action.split("/")[-2]
    token = hms_tokens.auth_token(
        access_key=run.hms[0], secret=run.hms[1], now=datetime.now(UTC), role="broadcaster"
    )
    used.add("the admin-set 100ms token", token)
    used.add("the admin-set 100ms token's signature", token.rsplit(".", 1)[1])
    answer = await api(
        page, "PUT", f"/api/admin/influencers/{influencer_id}/token", {"token": token}
    )
    assert answer["status"] == 200, answer
    assert answer["body"]["token"]["status"] == "valid", answer
    await page.goto(f"{base}/admin/influencers/{influencer_id}")
    await page.get_by_role("button", name="Disable streaming").click()
    await expect(manage.streaming_state).to_have_text("disabled")
    await page.get_by_role("button", name="Enable streaming").click()
    await expect(manage.streaming_state).to_have_text("enabled")
    return password


async def alice_goes_live(alice: Party, base: str, password: str, run: Run) -> GoLivePage:
    page = alice.page
    if run.emulator:
        await replace_module(page, SDK_URL, FAKE_SDK)
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill("alice@example.com")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{base}/influencer/live")
    live = GoLivePage(page)
    await live.start(run.title, "Nothing secret here")
    await expect(live.status).to_have_text(f"You are live: {run.title}")
    if run.emulator:
        await live.sdk.wait_for_join()
    else:
        await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    return live


async def viewer_watches(viewer: Party, base: str, live: GoLivePage, run: Run) -> None:
    if run.emulator:
        # The fake SDK joins with the viewer's token; the stage counts the peers 100ms reports.
        await replace_module(viewer.page, SDK_URL, FAKE_SDK)
        await viewer.page.goto(f"{base}/watch/alice")
        joined = await FakeSdk(viewer.page).wait_for_join()
        await live.sdk.add_peer(f"peer-{joined['user_id']}", "Viewer", "viewer")
    else:
        await viewer.page.goto(f"{base}/watch/alice")
        await plays_real_frames(viewer.page)
    await expect(live.viewers).to_have_text("1")


def post_webhook(base: str, run: Run, outside: list[Place]) -> None:
    script = SessionScript(room_id=uuid.uuid4().hex[:24])
    event = script.join("peer-1", "user-1", "viewer", datetime.now(UTC))
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post(
            "/webhooks/100ms", json=event, headers={WEBHOOK_SECRET_HEADER: run.webhook_secret}
        )
        # The scanner's own check: this marker must turn up in the access log.
        client.get("/healthz", params={"note": run.marker})
    assert answer.status_code == 200, answer.text
    outside.append(Place("100ms", "POST /webhooks/100ms", f"{answer.headers}\n{answer.text}"))


async def sign_out(who: Party) -> None:
    await who.keep_cookies()
    await who.page.get_by_role("button", name="Sign out").click()
    await who.page.wait_for_load_state()
    await who.keep_cookies()


async def journey(browser: Browser, base: str, run: Run, admin: AdminAccount) -> Journey:
    used = Secrets()
    async with (
        party(browser, "the admin") as admin_party,
        party(browser, "the influencer") as alice,
        party(browser, "a viewer") as viewer,
    ):
        await sign_in_admin(admin_party, base, admin, used)
        password = await admin_prepares_alice(admin_party, base, run, used)
        async with Listener(base) as listener:  # alice's handle exists from here on
            live = await alice_goes_live(alice, base, password, run)
            await viewer_watches(viewer, base, live, run)
            outside: list[Place] = []
            post_webhook(base, run, outside)
            await live.end.click()
            await expect(live.status).to_have_text("Your stream has ended.")
            await expect(viewer.page.get_by_test_id("watch-state")).to_contain_text("has ended")
            await viewer.keep_cookies()
            await sign_out(admin_party)
            await sign_out(alice)
            parties = [admin_party, alice, viewer]
            for each in parties:
                await each.settle()
    outside.append(listener.place())
    assert listener.heard_updates(), f"no live update heard: {listener.place().text[:300]}"
    return Journey(used, parties, outside, password)


def issued_secrets(journey: Journey) -> dict[str, str]:
    """Secrets the server handed to one party: its owner by value."""
    owners: dict[str, str] = {}
    for each in journey.parties:
        for cookie in each.cookies:
            owners.setdefault(cookie, each.name)
        for place in each.seen:
            for token in jwts(place.text):
                owners.setdefault(token, each.name)
            for csrf in _csrf_tokens(place.text):
                owners.setdefault(csrf, each.name)
    return owners


def _csrf_tokens(text: str) -> list[str]:
    return CSRF_IN_PAGE.findall(text)


def run_secrets(run: Run, admin: AdminAccount, journey: Journey) -> Secrets:
    every = Secrets()
    every.add("the admin's password", admin.password)
    every.add("the admin's TOTP seed", admin.totp_secret)
    every.add("LIVESTAGE_SECRET_KEY", run.secret_key)
    every.add("the encryption key", _derive(run.secret_key, b"at-rest-v1").decode())
    every.add("the 100ms app secret", run.hms[1])
    every.add("the webhook secret", run.webhook_secret)
    for value, label in journey.secrets.labels.items():
        every.add(label, value)
    return every


def describe(found: list[Found]) -> str:
    return "\n".join(str(f) for f in found)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_no_secret_in_logs_responses_or_the_database(
    browser: Browser, tmp_path: Path, level: str
) -> None:
    await check_a_journey(browser, Run(tmp_path, level))


async def test_with_100ms_no_secret_in_logs_responses_or_the_database(
    browser: Browser, tmp_path: Path, emulator: EmulatorHandle
) -> None:
    """The 100ms provider (the emulator) at DEBUG, which holds every INFO line too: the app
    mints management tokens for its calls and broadcaster and viewer tokens for the pages."""
    await check_a_journey(browser, Run(tmp_path, "DEBUG", emulator=emulator))


async def check_a_journey(browser: Browser, run: Run) -> None:
    level = run.level
    await asyncio.to_thread(migrated_sqlite, run.database)
    admin = await run.create_admin()
    with serving(run) as server:
        done = await journey(browser, server.base_url, run, admin)
        for each in done.parties:
            await each.settle()
    log = server.log_path.read_text(errors="replace")
    database = run.database_text()
    every = run_secrets(run, admin, done)
    issued = issued_secrets(done)
    kinds = set(done.secrets.labels.values())
    assert {"a TOTP code", "the influencer's password", "the admin-set 100ms token"} <= kinds
    assert len([o for o in issued.values() if o == "a viewer"]) >= 2, "no viewer cookie or token"
    assert any(jwts(p.text) for p in done.parties[2].seen), "the viewer's join token was not seen"

    # The scanner finds what is there.
    marker = Secrets({run.marker: "the marker"})
    assert search(marker, [Place("log", LOG, log)]), "the access log was not captured"
    title = Secrets({run.title: "the title"})
    assert search(title, [Place("db", DATABASE, database)]), "the database was not searched"
    shown = search(Secrets({done.generated_password: "password"}), _responses(done))
    assert [f.place.split(" ")[0] for f in shown] == ["POST"], describe(shown)
    # A DEBUG line of the library that sees the most: the 100ms client's, or the handshake's.
    debug_line = "send_request_headers" if run.emulator else "DEBUG:    < cookie: "
    assert (debug_line in log) == (level == "DEBUG"), "DEBUG lines not as asked"

    # The log and the database: nothing, and no JWT at all in the log.
    for_storage = Secrets(dict(every.labels))
    for value, owner in issued.items():
        for_storage.add(f"a session cookie, CSRF or join token of {owner}", value)
    leaks = search(for_storage, [Place("log", LOG, log)])
    assert not leaks, describe(leaks)
    # Nor any piece of a JWT: its header, base64 of '{"', starts "eyJ" (a shortened one too).
    assert "eyJ" not in log, "a JWT, or a piece of one, in the log"
    leaks = search(for_storage, [Place("db", DATABASE, database)])
    assert not leaks, describe(leaks)

    # Responses: what nobody is shown, nobody is shown.
    never = Secrets({v: k for v, k in every.labels.items() if v != done.generated_password})
    leaks = search(never, _responses(done))
    assert not leaks, describe(leaks)
    # Nor a management token (the server's own key to 100ms) in any form.
    for place in _responses(done):
        for token in jwts(place.text):
            claims = jwt.decode(token, options={"verify_signature": False})
            assert claims.get("type") != "management", f"a management token in {place.name}"
    # What was handed to one party reaches no other, and a cookie only through Set-Cookie.
    for value, owner in issued.items():
        one = Secrets({value: f"a secret of {owner}"})
        strays = [f for f in search(one, _responses(done)) if f.owner != owner]
        assert not strays, describe(strays)
    cookies = Secrets({c: "an HttpOnly cookie" for p in done.parties for c in p.hidden_cookies})
    assert len(cookies) >= 3, "the sessions' and the viewer's cookies were not kept"
    leaks = search(cookies, _responses(done))
    assert not leaks, describe(leaks)


def _responses(journey: Journey) -> list[Place]:
    return [place for each in journey.parties for place in each.seen] + journey.outside
