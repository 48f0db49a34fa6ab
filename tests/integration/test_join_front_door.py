"""The viewer join is served by the app's front door, before any middleware (web/routing.py
`FrontDoor`): its answers, errors included, carry exactly the headers the middleware gives every
other response, an unexpected error is answered with the 500 body and logged, and other methods
on its URL go on to FastAPI (a 405 naming POST)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from livestage.app import AppState
from livestage.streams.service import stream as stream_service
from livestage.web.csrf import CSRF_HEADER
from livestage.web.errors import UNEXPECTED_MESSAGE
from tests.support.emulator import EmulatorHandle
from tests.support.fixtures import (
    InfluencerAccount,
    create_influencer,
    csrf_token,
    login_influencer,
)

pytestmark = pytest.mark.asyncio
JOIN = "/api/watch/alice/join"
EVERY_RESPONSE = ("x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture
def settings_overrides(emulator: EmulatorHandle) -> dict[str, Any]:
    return {
        **emulator.app_settings(),
        "hms_max_retries": 1,
        "hms_timeout_seconds": 2,
    }


@pytest_asyncio.fixture
async def live(client: httpx.AsyncClient, ctx: AppState) -> InfluencerAccount:
    creator = await create_influencer(ctx, "alice")
    await login_influencer(client, creator)
    start = {"title": "Front door", "description": ""}
    assert (await client.post("/api/streams", json=start)).status_code == 201
    return creator


def viewer(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def _common(response: httpx.Response) -> dict[str, str]:
    names = (*EVERY_RESPONSE, "content-security-policy")
    return {name: response.headers[name] for name in names}


async def test_answers_and_refusals_carry_every_response_header(
    app: FastAPI, live: InfluencerAccount
) -> None:
    async with viewer(app) as browser:
        health = await browser.get("/healthz")
        headers = {CSRF_HEADER: await csrf_token(browser)}
        joined = await browser.post(JOIN, headers=headers)
        offline = await browser.post("/api/watch/nobody/join", headers=headers)
        refused = await browser.post(JOIN, headers={CSRF_HEADER: "forged"})
    assert [r.status_code for r in (joined, offline, refused)] == [200, 404, 403]
    for response in (joined, offline, refused):
        assert _common(response) == _common(health)
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
    assert joined.json()["kind"] == "token"


async def test_an_unexpected_error_is_the_500_body_with_the_headers_and_logged(
    app: FastAPI,
    live: InfluencerAccount,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("join broke")

    monkeypatch.setattr(stream_service, "viewer_join", broken)
    async with viewer(app) as browser:
        health = await browser.get("/healthz")
        capfd.readouterr()
        response = await browser.post(JOIN, headers={CSRF_HEADER: await csrf_token(browser)})
    assert response.status_code == 500
    assert response.json() == {"detail": UNEXPECTED_MESSAGE}
    assert _common(response) == _common(health)
    logged = capfd.readouterr().out
    assert "http.unhandled_error" in logged and "join broke" in logged


async def test_other_methods_go_on_to_fastapi(app: FastAPI, live: InfluencerAccount) -> None:
    async with viewer(app) as browser:
        response = await browser.get(JOIN)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "content-security-policy" in response.headers
