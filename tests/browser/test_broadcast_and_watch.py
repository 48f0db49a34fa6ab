"""An influencer goes live and a viewer watches, in Chromium, against the 100ms emulator.

The pages load the 100ms SDK from `LIVESTAGE_HMS_SDK_URL`; here that URL serves
`fake_hms_sdk.js`, which records what the pages ask of the SDK (`window.__hms`). Everything else
is real: the app behind uvicorn, its 100ms provider talking to the emulator over loopback, and
the room-code exchange the browser makes at the emulator's auth host.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    Error,
    Locator,
    Page,
    Request,
    Response,
    expect,
)

from tests.support.browser import isolated_page, replace_module
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import InfluencerAccount, create_influencer
from tests.support.live_server import LiveServer, LiveServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Port 9 (discard) on loopback: nothing answers there, so only the route below can serve it.
SDK_URL = "http://127.0.0.1:9/fake-hms-sdk.js"
FAKE_SDK = Path(__file__).with_name("fake_hms_sdk.js").read_text(encoding="utf-8")
FORMAT_MESSAGE = (
    "A room code looks like abc-defg-hij: letters in groups of 3, 4 and 3, separated by dashes."
)


def hms_settings(emulator: EmulatorHandle, **overrides: Any) -> dict[str, Any]:
    return {
        "provider": "hms",
        **emulator.app_settings(),
        "hms_sdk_url": SDK_URL,
        **overrides,
    }


@pytest.fixture
def live_server_settings(emulator: EmulatorHandle) -> dict[str, Any]:
    return hms_settings(emulator)


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    return live_server.run(create_influencer(live_server.ctx, "alice"))


@pytest_asyncio.fixture(loop_scope="session")
async def viewer_page(browser: Browser) -> AsyncIterator[Page]:
    """A second person: a page in a context of its own (no cookies shared with `page`)."""
    async with isolated_page(browser) as new_page:
        yield new_page


# What the page sent and received -----------------------------------------------------------


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Traffic:
    """Every request a page made and every response body it got, plus its uncaught errors."""

    requests: list[Request] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    _reading: set[asyncio.Task[None]] = field(default_factory=set)

    def attach(self, page: Page) -> Traffic:
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._on_response)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return self

    def _on_response(self, response: Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return  # live updates (SSE): the body never ends while the page is open
        task = asyncio.ensure_future(self._read(response))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, response: Response) -> None:
        try:
            body = await response.body()
        except Error:  # redirects have no body
            body = b""
        request = response.request
        self.exchanges.append(Exchange(request.method, response.url, response.status, body))

    async def settle(self) -> list[Exchange]:
        while self._reading:
            await asyncio.gather(*list(self._reading))
        return self.exchanges

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.url.endswith(path)]

    async def received(self, method: str, path: str) -> list[Exchange]:
        await self.settle()
        return [e for e in self.exchanges if e.method == method and e.url.endswith(path)]


# The pages and the fake SDK ------------------------------------------------------------------


class FakeSdk:
    """`window.__hms` in one page (a reload starts a fresh one)."""

    def __init__(self, page: Page) -> None:
        self.page = page

    async def calls(self, name: str) -> list[list[Any]]:
        calls = await self.page.evaluate("() => window.__hms ? window.__hms.calls : []")
        return [c["args"] for c in calls if c["name"] == name]

    async def joins(self) -> list[dict[str, Any]]:
        joins: list[dict[str, Any]] = await self.page.evaluate(
            "() => window.__hms ? window.__hms.joins : []"
        )
        return joins

    async def wait_for_join(self) -> dict[str, Any]:
        await self.page.wait_for_function("() => (window.__hms?.joins.length ?? 0) > 0")
        (joined,) = await self.joins()
        return joined

    async def add_peer(self, peer_id: str, name: str, role: str, video: str | None = None) -> None:
        peer = {"id": peer_id, "name": name, "roleName": role, "videoTrack": video}
        await self.page.evaluate("(peer) => window.__hms.addPeer(peer)", peer)

    async def remove_peer(self, peer_id: str) -> None:
        await self.page.evaluate("(id) => window.__hms.removePeer(id)", peer_id)


class GoLivePage:
    """/influencer/live as the influencer sees it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sdk = FakeSdk(page)
        self.status = page.get_by_test_id("status")
        self.problem = page.get_by_test_id("problem")
        self.start_form = page.get_by_test_id("start-form")
        self.code_form = page.get_by_test_id("code-form")
        self.stage = page.get_by_test_id("stage")
        self.viewers = page.get_by_test_id("viewers")
        self.participants = page.get_by_test_id("participants").locator("li")
        self.elapsed = page.get_by_test_id("elapsed")
        self.mute = page.locator("#toggle-audio")
        self.camera_toggle = page.locator("#toggle-video")
        self.screen = page.get_by_role("button", name="Share screen")
        # By id: a label wrapping a <select> is named after the selected option too.
        self.camera = page.locator("select#camera")
        self.microphone = page.locator("select#microphone")
        self.end = page.get_by_role("button", name="End Stream")

    @property
    def start_button(self) -> Locator:
        return self.page.get_by_role("button", name="Start Streaming")

    async def fill_details(self, title: str, description: str) -> None:
        await self.start_form.get_by_label("Title").fill(title)
        await self.start_form.get_by_label("Description").fill(description)

    async def start(self, title: str, description: str = "") -> None:
        await self.fill_details(title, description)
        await self.start_button.click()

    async def submit_code(self, code: str) -> None:
        await self.code_form.get_by_label("Room code").fill(code)
        await self.code_form.get_by_role("button", name="Go live with this code").click()

    async def current_stream(self) -> dict[str, Any] | None:
        """GET /api/streams/current with the page's own session."""
        found: dict[str, Any] | None = await self.page.evaluate(
            "() => fetch('/api/streams/current').then((r) => r.json()).then((b) => b.stream)"
        )
        return found


async def open_go_live(page: Page, server: LiveServer, account: InfluencerAccount) -> GoLivePage:
    """Sign in at /login; influencers land on /influencer/live."""
    await page.goto(server.url("/login"))
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(server.url("/influencer/live"))
    return GoLivePage(page)


async def go_live(live: GoLivePage, title: str, description: str = "") -> dict[str, Any]:
    await live.start(title, description)
    await expect(live.stage).to_be_visible()
    await expect(live.status).to_have_text(f"You are live: {title}")
    stream = await live.current_stream()
    assert stream is not None
    return stream


def emulator_rooms(emulator: EmulatorHandle, name: str) -> list[dict[str, Any]]:
    with emulator.api() as api:
        response = api.get("/rooms", params={"name": name})
        assert response.status_code == 200, response.text
        rooms: list[dict[str, Any]] = response.json()["data"]
        return rooms


def verified_claims(token: str, emulator: EmulatorHandle) -> dict[str, Any]:
    """The claims of an auth token signed with the emulator's (the 100ms app's) secret."""
    claims: dict[str, Any] = jwt.decode(token, emulator.app_secret, algorithms=["HS256"])
    return claims


async def assert_secret_never_shown(page: Page, traffic: Traffic, *hidden: str) -> None:
    """Not in the page, nor in any body the page received or any request it sent."""
    html = await page.content()
    exchanges = await traffic.settle()
    assert any("/api/" in e.url for e in exchanges), "no API response was captured"
    for secret in hidden:
        assert secret not in html
        for exchange in exchanges:
            assert secret.encode() not in exchange.body, f"the app secret is in {exchange.url}"
        for request in traffic.requests:
            assert secret not in request.url
            assert secret.encode() not in (request.post_data_buffer or b"")


# The journeys ------------------------------------------------------------------------------


async def test_influencer_goes_live_runs_the_stage_and_ends_the_stream(
    page: Page, live_server: LiveServer, emulator: EmulatorHandle, alice: InfluencerAccount
) -> None:
    traffic = Traffic().attach(page)
    sdk_module = await replace_module(page, SDK_URL, FAKE_SDK)
    live = await open_go_live(page, live_server, alice)
    await expect(live.stage).to_be_hidden()
    await expect(live.code_form).to_be_hidden()
    assert sdk_module.requests == [], "the SDK is loaded only when going live"

    stream = await go_live(live, "Friday jam", "Acoustic covers, requests welcome")

    # The server went the automatic way: the influencer's deterministic room at "100ms".
    (created,) = await traffic.received("POST", "/api/streams")
    assert created.status == 201
    answer = created.json()["join"]
    assert answer["kind"] == "token" and answer["role"] == "broadcaster"
    assert stream["status"] == "live" and stream["strategy"] == "automatic"
    assert (stream["title"], stream["description"]) == (
        "Friday jam",
        "Acoustic covers, requests welcome",
    )
    (room,) = emulator_rooms(emulator, "livestage-alice")
    assert stream["room_id"] == room["id"] == answer["room_id"]

    # The page joined with the server-minted broadcaster token for that room.
    joined = await live.sdk.wait_for_join()
    assert joined["room_id"] == room["id"]
    assert joined["role"] == "broadcaster"
    assert joined["type"] == "app"
    assert joined["user_id"] == answer["user_id"]
    assert joined["userName"] == "Alice"
    ((config,),) = await live.sdk.calls("join")
    assert config["authToken"] == answer["token"]
    assert config["settings"] == {"isAudioMuted": False, "isVideoMuted": False}
    claims = verified_claims(config["authToken"], emulator)
    assert claims["access_key"] == emulator.access_key
    # ... which the provider accepts like 100ms's init endpoint would.
    peer = emulator.control.join_peer(room["id"], token=config["authToken"], name="Alice")
    assert peer["role"] == "broadcaster"
    assert sdk_module.requests == [SDK_URL]

    # Camera preview and device pickers.
    assert ["local-video", "#preview"] in await live.sdk.calls("attachVideo")
    await expect(live.camera.locator("option")).to_have_text(["Fake camera 1", "Fake camera 2"])
    await live.camera.select_option("fake-camera-2")
    await live.microphone.select_option("fake-mic-2")
    assert await live.sdk.calls("setVideoSettings") == [[{"deviceId": "fake-camera-2"}]]
    assert await live.sdk.calls("setAudioSettings") == [[{"deviceId": "fake-mic-2"}]]

    # Viewers come and go.
    await expect(live.viewers).to_have_text("0")
    await expect(live.participants).to_have_count(0)
    await live.sdk.add_peer("viewer-1", "Bea", "viewer")
    await live.sdk.add_peer("viewer-2", "Carl", "viewer")
    await expect(live.viewers).to_have_text("2")
    await expect(live.participants).to_have_text(["Bea", "Carl"])
    await live.sdk.remove_peer("viewer-1")
    await expect(live.viewers).to_have_text("1")
    await expect(live.participants).to_have_text(["Carl"])

    # Audio, video, screen.
    await live.mute.click()
    await expect(live.mute).to_have_text("Unmute")
    await live.camera_toggle.click()
    await expect(live.camera_toggle).to_have_text("Camera on")
    await live.mute.click()
    await expect(live.mute).to_have_text("Mute")
    await live.screen.click()
    assert await live.sdk.calls("setLocalAudioEnabled") == [[False], [True]]
    assert await live.sdk.calls("setLocalVideoEnabled") == [[False]]
    assert await live.sdk.calls("setScreenShareEnabled") == [[True]]
    await expect(live.elapsed).not_to_have_text("0:00")

    # End Stream: the end API, then leave().
    assert await live.sdk.calls("leave") == []
    await live.end.click()
    await expect(live.status).to_have_text("Your stream has ended.")
    await expect(live.stage).to_be_hidden()
    await expect(live.start_form).to_be_visible()
    assert await live.sdk.calls("leave") == [[]]
    (ended,) = await traffic.received("POST", "/api/streams/current/end")
    assert ended.status == 200
    assert ended.json()["id"] == stream["id"]
    assert ended.json()["status"] == "ended"
    assert ended.json()["end_reason"] == "broadcaster"
    assert await live.current_stream() is None
    end_room = f"/v2/active-rooms/{room['id']}/end-room"
    (ended_at_provider,) = emulator.control.requests(path_prefix=end_room, method="POST")
    assert ended_at_provider["status"] == 200

    # Going live again later: a new stream in the same room, and the stage works as before.
    again = await go_live(live, "Encore", "")
    assert again["id"] != stream["id"]
    assert again["room_id"] == room["id"]
    assert [j["room_id"] for j in await live.sdk.joins()] == [room["id"], room["id"]]
    await live.sdk.add_peer("viewer-3", "Dee", "viewer")
    await expect(live.viewers).to_have_text("1")
    await expect(live.participants).to_have_text(["Dee"])
    await expect(live.mute).to_have_text("Mute")
    attached = await live.sdk.calls("attachVideo")
    assert attached == [["local-video", "#preview"]] * 2, "one attach per join"
    assert len(emulator_rooms(emulator, "livestage-alice")) == 1

    await assert_secret_never_shown(page, traffic, emulator.app_secret)
    assert traffic.page_errors == []


async def test_double_click_second_tab_and_reload_rejoin_the_same_stream_and_room(
    page: Page, live_server: LiveServer, emulator: EmulatorHandle, alice: InfluencerAccount
) -> None:
    traffic = Traffic().attach(page)
    await replace_module(page, SDK_URL, FAKE_SDK)
    live = await open_go_live(page, live_server, alice)
    await live.fill_details("One room only", "")

    await live.start_button.dblclick()

    await expect(live.stage).to_be_visible()
    first = await live.current_stream()
    assert first is not None
    assert len(traffic.sent("POST", "/api/streams")) == 1
    joined = await live.sdk.wait_for_join()
    assert (joined["room_id"], joined["role"]) == (first["room_id"], "broadcaster")

    # A second tab of the same influencer rejoins the stream that is already live.
    tab = await page.context.new_page()
    tab_traffic = Traffic().attach(tab)
    await replace_module(tab, SDK_URL, FAKE_SDK)
    await tab.goto(live_server.url("/influencer/live"))
    second = GoLivePage(tab)
    await expect(second.start_form).to_be_hidden()
    await expect(second.stage).to_be_visible()
    await expect(second.status).to_have_text("You are live: One room only")
    rejoined = await second.sdk.wait_for_join()
    assert (rejoined["room_id"], rejoined["role"]) == (first["room_id"], "broadcaster")
    (again,) = await tab_traffic.received("POST", "/api/streams")
    assert again.status == 200
    assert again.json()["created"] is False
    assert again.json()["stream"]["id"] == first["id"]
    await tab.close()

    # Reloading the first tab does the same.
    await page.reload()
    await expect(live.stage).to_be_visible()
    reloaded = await live.sdk.wait_for_join()
    assert (reloaded["room_id"], reloaded["role"]) == (first["room_id"], "broadcaster")
    current = await live.current_stream()
    assert current is not None
    assert (current["id"], current["status"]) == (first["id"], "live")

    go_lives = await traffic.received("POST", "/api/streams")
    assert [e.status for e in go_lives] == [201, 200]
    assert {e.json()["stream"]["id"] for e in go_lives} == {first["id"]}
    assert len(emulator_rooms(emulator, "livestage-alice")) == 1
    assert len(emulator.control.requests(path_prefix="/v2/rooms", method="POST")) == 1
    assert traffic.page_errors == tab_traffic.page_errors == []


async def test_room_code_fallback_when_automatic_set_up_fails(
    page: Page, live_server_factory: LiveServerFactory, emulator: EmulatorHandle
) -> None:
    wrong_secret = secrets.token_hex(32)
    # In a thread: building the server's database runs an event loop of its own.
    settings = hms_settings(emulator, hms_app_secret=wrong_secret)
    server = await asyncio.to_thread(live_server_factory, settings)
    alice = server.run(create_influencer(server.ctx, "alice"))
    with emulator.api() as api:  # a room made in the 100ms dashboard, with its codes
        room = api.post("/rooms", json={"name": "alice-studio"}).json()
        made = api.post(f"/room-codes/room/{room['id']}").json()["data"]
    codes = {c["role"]: c["code"] for c in made}
    traffic = Traffic().attach(page)
    await replace_module(page, SDK_URL, FAKE_SDK)
    live = await open_go_live(page, server, alice)

    await live.start("Plan B", "")

    await expect(live.problem).to_be_visible()
    # The creator reads what to do now; why (the refused secret) is for the admin.
    await expect(live.problem).to_contain_text(
        "Streaming is not set up correctly on this server; an admin has been told. You can "
        "still go live with the room code of your 100ms room"
    )
    await expect(live.problem).not_to_contain_text("LIVESTAGE_")
    await expect(live.code_form).to_be_visible()
    instructions = live.code_form.locator("ol li")
    await expect(instructions).to_have_count(3)
    await expect(instructions.nth(2)).to_contain_text("broadcaster")
    await expect(live.stage).to_be_hidden()
    (refused,) = await traffic.received("POST", "/api/streams")
    assert refused.status == 409
    assert refused.json()["code"] == "room_code_required"
    assert await live.current_stream() is None
    assert emulator_rooms(emulator, "livestage-alice") == []

    # A malformed code: the page explains the format and asks nobody.
    sent_before = len(traffic.requests)
    for malformed in ("abc-12-xyz", "abcdefghij", "ab-cdef-ghi"):
        await live.submit_code(malformed)
        await expect(live.problem).to_have_text(FORMAT_MESSAGE)
    assert len(traffic.requests) == sent_before
    assert emulator.control.requests(path_prefix="/auth") == []

    # The viewer role's code: the server checks it with 100ms and refuses it.
    await live.submit_code(codes["viewer"])
    await expect(live.problem).to_have_text(
        "This room code is for the role 'viewer'; use the code of the 'broadcaster' role "
        "to broadcast."
    )
    (wrong_role,) = await traffic.received("POST", "/api/streams/room-code")
    assert wrong_role.status == 422
    assert await live.sdk.joins() == []
    assert await live.current_stream() is None

    # The broadcaster's code (as typed from the dashboard, any case): exchanged and joined.
    await live.submit_code(codes["broadcaster"].upper())
    await expect(live.stage).to_be_visible()
    await expect(live.status).to_have_text("You are live: Plan B")
    await expect(live.problem).to_be_hidden()
    accepted = (await traffic.received("POST", "/api/streams/room-code"))[-1]
    assert accepted.status == 201
    answer = accepted.json()["join"]
    assert answer["kind"] == "room_code"
    assert answer["room_code"] == codes["broadcaster"]
    assert answer["token_endpoint"] == f"{emulator.auth_url}/token"
    assert await live.sdk.calls("getAuthTokenByRoomCode") == [
        [
            {"roomCode": codes["broadcaster"], "userId": answer["user_id"]},
            {"endpoint": f"{emulator.auth_url}/token"},
        ]
    ]
    joined = await live.sdk.wait_for_join()
    assert (joined["room_id"], joined["role"]) == (room["id"], "broadcaster")
    assert joined["user_id"] == answer["user_id"]
    ((config,),) = await live.sdk.calls("join")
    claims = verified_claims(config["authToken"], emulator)  # minted by "100ms", not by us
    assert (claims["room_id"], claims["role"]) == (room["id"], "broadcaster")
    # The server checked both codes; the browser exchanged the good one itself.
    exchanges = emulator.control.requests(path_prefix="/auth/v2/token", method="POST")
    assert [e["status"] for e in exchanges] == [200, 200, 200]
    browser_exchange = [e for e in await traffic.settle() if e.url.endswith("/auth/v2/token")]
    assert [(e.method, e.status) for e in browser_exchange] == [("POST", 200)]
    stream = await live.current_stream()
    assert stream is not None
    assert (stream["strategy"], stream["room_id"], stream["status"]) == (
        "room_code",
        room["id"],
        "live",
    )

    # A reload rejoins the same stream with the same code, exchanged again by the browser.
    await page.reload()
    await expect(live.stage).to_be_visible()
    rejoined = await live.sdk.wait_for_join()
    assert (rejoined["room_id"], rejoined["role"]) == (room["id"], "broadcaster")
    ((request, _),) = await live.sdk.calls("getAuthTokenByRoomCode")
    assert request == {"roomCode": codes["broadcaster"], "userId": answer["user_id"]}
    current = await live.current_stream()
    assert current is not None and current["id"] == stream["id"]

    await assert_secret_never_shown(page, traffic, emulator.app_secret, wrong_secret)
    assert traffic.page_errors == []


async def test_viewer_watches_live_offline_ended_and_unknown_creators(
    page: Page,
    viewer_page: Page,
    live_server: LiveServer,
    emulator: EmulatorHandle,
    alice: InfluencerAccount,
) -> None:
    live_server.run(create_influencer(live_server.ctx, "bob"))
    viewer = viewer_page
    traffic = Traffic().attach(viewer)
    sdk_module = await replace_module(viewer, SDK_URL, FAKE_SDK)
    sdk = FakeSdk(viewer)
    state = viewer.get_by_test_id("watch-state")
    live_list = viewer.get_by_test_id("live-list").locator("li")
    card_titles = viewer.get_by_test_id("card-title")

    # Nobody is live yet.
    await viewer.goto(live_server.url("/watch/alice"))
    await expect(state).to_have_text("@alice is offline right now. Check who is live.")
    await viewer.goto(live_server.url("/live"))
    await expect(live_list).to_have_text(["Nobody is live right now. Come back soon."])

    # Alice goes live; /live lists her and her watch page joins her room as a viewer.
    await replace_module(page, SDK_URL, FAKE_SDK)
    studio = await open_go_live(page, live_server, alice)
    stream = await go_live(studio, "Late show", "Questions at the end")
    await viewer.reload()
    await expect(card_titles).to_have_text(["Late show"])
    await expect(live_list).to_contain_text(["Alice @alice"])
    # 100ms streams have no picture source: the card keeps its placeholder.
    await expect(live_list.locator(".placeholder")).to_have_text("A")
    await expect(viewer.get_by_test_id("card-picture")).to_be_hidden()
    await card_titles.click()
    await expect(viewer).to_have_url(live_server.url("/watch/alice"))
    await expect(viewer.get_by_role("heading", level=2)).to_have_text("Late show")
    await expect(viewer.get_by_text("Questions at the end")).to_be_visible()

    joined = await sdk.wait_for_join()
    assert (joined["room_id"], joined["role"], joined["type"]) == (
        stream["room_id"],
        "viewer",
        "app",
    )
    assert joined["user_id"].startswith("viewer-")
    assert joined["settings"] == {"isAudioMuted": True, "isVideoMuted": True}
    ((config,),) = await sdk.calls("join")
    (viewer_join,) = await traffic.received("POST", "/api/watch/alice/join")
    assert viewer_join.json()["token"] == config["authToken"]
    assert verified_claims(config["authToken"], emulator)["role"] == "viewer"
    peer = emulator.control.join_peer(stream["room_id"], token=config["authToken"])
    assert peer["role"] == "viewer"

    await expect(state).to_have_text("Waiting for the stream to start…")
    await expect(viewer.get_by_test_id("viewers")).to_have_text("1")
    await sdk.add_peer("host", "Alice", "broadcaster", video="host-video")
    await expect(state).to_have_text("Live")
    assert ["host-video", "#player"] in await sdk.calls("attachVideo")
    await sdk.add_peer("viewer-2", "Dee", "viewer")
    await expect(viewer.get_by_test_id("viewers")).to_have_text("2")
    await expect(viewer.get_by_test_id("problem")).to_be_hidden()

    # Bob has never streamed.
    await viewer.goto(live_server.url("/watch/bob"))
    await expect(state).to_have_text("@bob is offline right now. Check who is live.")
    await viewer.get_by_role("link", name="who is live").click()
    await expect(card_titles).to_have_text(["Late show"])

    # Alice ends: her page says so, and so do the watch page and /live.
    await studio.end.click()
    await expect(studio.status).to_have_text("Your stream has ended.")
    await viewer.goto(live_server.url("/watch/alice"))
    await expect(state).to_have_text("The stream “Late show” has ended. See who is live now.")
    await expect(viewer.locator("#player")).to_have_count(0)
    await viewer.goto(live_server.url("/live"))
    await expect(live_list).to_have_text(["Nobody is live right now. Come back soon."])

    # Nobody by that name.
    response = await viewer.goto(live_server.url("/watch/unknown"))
    assert response is not None and response.status == 404
    await expect(viewer.get_by_role("heading", level=1)).to_have_text("No such creator")
    await expect(state).to_have_text("No influencer with the handle @unknown.")

    assert sdk_module.requests == [SDK_URL], "only the live watch page loads the SDK"
    await assert_secret_never_shown(viewer, traffic, emulator.app_secret)
    assert traffic.page_errors == []


async def test_both_pages_follow_the_sdk_room_state_reconnecting_reconnected_failed(
    page: Page, viewer_page: Page, live_server: LiveServer, alice: InfluencerAccount
) -> None:
    """hms.js follows `selectRoomState`: the SDK keeps `isConnected` true while it reconnects,
    so only the room state can tell the broadcaster and the viewer (tests/browser/
    test_real_hms_sdk.py drives the real SDK through the same states)."""
    await replace_module(page, SDK_URL, FAKE_SDK)
    studio = await open_go_live(page, live_server, alice)
    await go_live(studio, "Night owls")
    await replace_module(viewer_page, SDK_URL, FAKE_SDK)
    await viewer_page.goto(live_server.url("/watch/alice"))
    viewer = FakeSdk(viewer_page)
    await viewer.wait_for_join()
    await viewer.add_peer("host", "Alice", "broadcaster", video="host-video")
    watch_state = viewer_page.get_by_test_id("watch-state")
    await expect(watch_state).to_have_text("Live")

    async def set_room_state(target: Page, state: str, error: str | None = None) -> None:
        await target.evaluate(
            "([state, error]) => window.__hms.setRoomState(state, error && {message: error})",
            [state, error],
        )

    for target in (page, viewer_page):
        await set_room_state(target, "Reconnecting")
    await expect(studio.status).to_have_text("Disconnected: reconnecting…")
    await expect(watch_state).to_have_text("Connection lost: reconnecting…")
    for target in (page, viewer_page):
        await set_room_state(target, "Connected")
    await expect(studio.status).to_have_text("Reconnected: you are live: Night owls")
    await expect(watch_state).to_have_text("Reconnected: live")

    for target in (page, viewer_page):
        await set_room_state(target, "Failed", "Network connection lost")
    failed = (
        "The connection to the room failed: Network connection lost. Reload the page to try again."
    )
    await expect(studio.problem).to_have_text(failed)
    await expect(studio.status).to_have_text("Disconnected.")
    await expect(viewer_page.get_by_test_id("problem")).to_have_text(failed)
