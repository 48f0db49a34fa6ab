"""The REAL 100ms browser SDK in the pages, as livestage serves it (no fake at the SDK URL).

livestage serves `@100mslive/hms-video-store` from its own origin (`make deps`), under the
strict Content-Security-Policy. The room code is exchanged at the emulator's auth host by the
SDK's own `getAuthTokenByRoomCode`; a page goes live with the server-minted token, and what the
SDK sends first, its init request to 100ms, is checked at the network boundary. From there,
tests/browser/hms_edge.py plays 100ms's init and signalling so the SDK reaches Connected, and
dropping its signalling WebSocket makes it report Reconnecting, then Connected again.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.browser.hms_edge import INIT_ORIGIN, SIGNAL_ENDPOINT, HmsEdge, hms_edge
from tests.browser.test_broadcast_and_watch import GoLivePage, open_go_live
from tests.support.browser import isolated_page
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import InfluencerAccount, create_influencer
from tests.support.live_server import LiveServer, LiveServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SDK_PATH = "/static/vendor/hms-video-store.js"
VENDOR = Path(__file__).resolve().parents[2] / "vendor" / "package.json"
PINNED = json.loads(VENDOR.read_text(encoding="utf-8"))["dependencies"][
    "@100mslive/hms-video-store"
]


def hms_settings(emulator: EmulatorHandle) -> dict[str, Any]:
    """The 100ms provider at the emulator; the SDK URL left at its default (livestage's own)."""
    return {
        "provider": "hms",
        **emulator.app_settings(),
    }


@pytest.fixture
def live_server_settings(emulator: EmulatorHandle) -> dict[str, Any]:
    return hms_settings(emulator)


@pytest.fixture
def alice(live_server: LiveServer) -> InfluencerAccount:
    return live_server.run(create_influencer(live_server.ctx, "alice"))


@pytest_asyncio.fixture(loop_scope="session")
async def edge(
    browser: Browser, emulator: EmulatorHandle, live_server: LiveServer
) -> AsyncIterator[HmsEdge]:
    template_id = emulator.control.info()["default_template_id"]
    with emulator.api() as api:
        template = api.get(f"/templates/{template_id}").json()
    origin = live_server.url("/healthz")
    async with hms_edge(browser, template["roles"], template_id, origin) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def viewer_page(browser: Browser) -> AsyncIterator[Page]:
    async with isolated_page(browser) as new_page:
        yield new_page


def claims_of(token: str, emulator: EmulatorHandle) -> dict[str, Any]:
    """An auth token's claims, its signature checked with the emulator's (the app's) secret."""
    claims: dict[str, Any] = jwt.decode(token, emulator.app_secret, algorithms=["HS256"])
    return claims


async def test_livestage_serves_the_pinned_sdk_and_its_room_code_exchange_reaches_the_emulator(
    page: Page, live_server: LiveServer, emulator: EmulatorHandle
) -> None:
    """The SDK's own getAuthTokenByRoomCode (what hms.js calls for a room-code join), pointed at
    the emulator's auth host, under the page's policy."""
    with emulator.api() as api:
        made = api.post("/rooms", json={"name": f"codes-{uuid.uuid4().hex[:6]}"}).json()
        codes = api.post(f"/room-codes/room/{made['id']}").json()["data"]
    code = next(c["code"] for c in codes if c["role"] == "broadcaster")
    await page.goto(live_server.url("/login"))

    served = await page.evaluate(
        """async (path) => {
          const source = await (await fetch(path)).text();
          const sdk = await import(path);
          const names = ["HMSReactiveStore", "selectRoomState", "HMSRoomState"];
          return { version: source.match(/\\{version:"([^"]+)",license:"MIT"/)[1],
                   exports: names.filter((n) => n in sdk) };
        }""",
        SDK_PATH,
    )
    token = await page.evaluate(
        """async ([path, code, endpoint]) => {
          const sdk = await import(path);
          const actions = new sdk.HMSReactiveStore().getActions();
          const request = { roomCode: code, userId: "alice-user" };
          return actions.getAuthTokenByRoomCode(request, { endpoint });
        }""",
        [SDK_PATH, code, f"{emulator.auth_url}/token"],
    )

    assert served == {
        "version": PINNED,
        "exports": ["HMSReactiveStore", "selectRoomState", "HMSRoomState"],
    }
    claims = claims_of(token, emulator)
    assert (claims["room_id"], claims["role"], claims["user_id"], claims["type"]) == (
        made["id"],
        "broadcaster",
        "alice-user",
        "app",
    )
    exchanged = emulator.control.requests(path_prefix="/auth/v2/token")
    assert [r["status"] for r in exchanged] == [200]


async def go_live_with_the_real_sdk(
    page: Page, live_server: LiveServer, account: InfluencerAccount, title: str
) -> tuple[GoLivePage, dict[str, Any]]:
    live = await open_go_live(page, live_server, account)
    await live.fill_details(title, "")
    async with page.expect_response(lambda r: r.url.endswith("/api/streams")) as created:
        await live.start_button.click()
    answer: dict[str, Any] = (await (await created.value).json())["join"]
    return live, answer


async def test_the_real_sdk_joins_with_the_server_minted_token_and_reconnects(
    page: Page,
    viewer_page: Page,
    live_server: LiveServer,
    emulator: EmulatorHandle,
    alice: InfluencerAccount,
    edge: HmsEdge,
) -> None:
    sdk_loads: list[str] = []
    page.on("request", lambda r: SDK_PATH in r.url and sdk_loads.append(r.url))
    await edge.attach(page)

    live, answer = await go_live_with_the_real_sdk(page, live_server, alice, "Real SDK night")

    # The SDK livestage served (its own origin, no fake), then 100ms's init: what it sends first.
    await expect(live.status).to_have_text("You are live: Real SDK night")
    assert sdk_loads == [live_server.url(SDK_PATH)]
    (init,) = edge.inits
    assert init.url.startswith(f"{INIT_ORIGIN}/init?")
    assert init.authorization == f"Bearer {answer['token']}"
    claims = claims_of(answer["token"], emulator)
    (room,) = [r for r in emulator_rooms(emulator) if r["name"] == "livestage-alice"]
    assert (claims["room_id"], claims["role"], claims["type"]) == (room["id"], "broadcaster", "app")
    peer_id = init.query["peer_id"]
    assert uuid.UUID(peer_id).version == 4
    assert f"sdk_version:{PINNED}" in init.query["user_agent_v2"]

    # Signalling: the token and peer id of the init, then the join with an SDP offer.
    (socket,) = edge.sockets
    assert socket.route.url.startswith(f"{SIGNAL_ENDPOINT}?")
    assert (socket.query["peer"], socket.query["token"]) == (peer_id, answer["token"])
    (join,) = socket.calls("join")
    assert join["params"]["name"] == "Alice"
    assert join["params"]["offer"]["type"] == "offer"
    assert join["params"]["offer"]["sdp"].startswith("v=0")
    # The page published its camera and microphone over the real connection.
    await eventually(lambda: socket.calls("offer"))
    assert re.search(r"^m=video ", socket.calls("offer")[-1]["params"]["desc"]["sdp"], re.M)
    await eventually(lambda: edge.connected(socket), poll=True)

    # The viewer's page, with the real SDK too.
    await edge.attach(viewer_page)
    await viewer_page.goto(live_server.url("/watch/alice"))
    watch_state = viewer_page.get_by_test_id("watch-state")
    await eventually(lambda: len(edge.sockets) == 2)
    viewer_socket = edge.sockets[1]
    await eventually(lambda: viewer_socket.calls("join"))
    await expect(watch_state).to_have_text("Waiting for the stream to start…")
    assert claims_of(viewer_socket.query["token"], emulator)["role"] == "viewer"

    # Signalling drops: the SDK reports Reconnecting (isConnected stays true), reconnects
    # through init and a new socket, and reports Connected; both pages say so.
    await edge.drop(socket)
    await expect(live.status).to_have_text("Disconnected: reconnecting…")
    await expect(live.status).to_have_text(
        "Reconnected: you are live: Real SDK night", timeout=20_000
    )
    assert len(edge.inits) >= 3 and edge.inits[-1].authorization == f"Bearer {answer['token']}"

    await edge.drop(viewer_socket)
    await expect(watch_state).to_have_text("Connection lost: reconnecting…")
    await expect(watch_state).to_have_text(
        "Reconnected: waiting for the stream to start…", timeout=20_000
    )
    await expect(live.problem).to_be_hidden()


async def eventually(check: Callable[[], Any], timeout: float = 10.0, poll: bool = False) -> None:
    """Wait until `check()` (awaited when `poll`) is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (await check() if poll else check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def emulator_rooms(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    with emulator.api() as api:
        rooms: list[dict[str, Any]] = api.get("/rooms", params={"limit": 100}).json()["data"]
        return rooms


async def test_without_the_sdk_bundle_the_page_says_so(
    page: Page, live_server_factory: LiveServerFactory, emulator: EmulatorHandle
) -> None:
    # In a thread: building the server's database runs an event loop of its own.
    settings = {**hms_settings(emulator), "hms_sdk_url": "/static/vendor/gone.js"}
    server = await asyncio.to_thread(live_server_factory, settings)
    account = server.run(create_influencer(server.ctx, "alice"))

    live, _ = await go_live_with_the_real_sdk(page, server, account, "No SDK")

    await expect(live.problem).to_contain_text(
        "The 100ms video SDK could not be loaded from /static/vendor/gone.js"
    )
    await expect(live.problem).to_contain_text("make deps")
