"""/docs in Chromium: Swagger UI lists the API's operations with nothing but loopback to reach
(livestage serves Swagger UI's files itself) and under the Content-Security-Policy, which
`isolated_page` fails the test on if anything breaks it; its "Try it out" passes the CSRF check,
signed out and signed in. Also checks that watch: a page that runs inline code is reported."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Response, expect

from tests.support.browser import watch_csp
from tests.support.fixtures import create_influencer
from tests.support.live_server import LiveServer
from tests.support.network_guard import is_loopback

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

METHODS = {"get", "put", "post", "delete", "patch"}


def operation_blocks(openapi: dict[str, Any]) -> int:
    """How many operations Swagger UI shows: each once under every one of its tags."""
    return sum(
        len(operation.get("tags") or ["default"])
        for item in openapi["paths"].values()
        for method, operation in item.items()
        if method.lower() in METHODS
    )


async def test_docs_lists_every_operation_offline_under_the_policy(
    page: Page, live_server: LiveServer
) -> None:
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if not is_loopback(urlsplit(request.url).hostname or ""):
            elsewhere.append(request.url)

    page.on("request", note)
    response = await page.goto(live_server.url("/docs"))
    assert response is not None and response.ok
    assert "script-src 'self'" in (await response.header_value("content-security-policy") or "")
    async with httpx.AsyncClient() as client:
        expected = operation_blocks((await client.get(live_server.url("/openapi.json"))).json())
    assert expected > 20
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("livestage")
    await expect(page.locator(".opblock")).to_have_count(expected)
    await page.locator(".opblock").first.locator(".opblock-summary").click()
    await expect(page.locator(".opblock-body").first).to_be_visible()
    assert elsewhere == []


async def try_it_out(page: Page, method: str, path: str, body: dict[str, Any] | None) -> int:
    """Runs one operation from Swagger UI; the status it got."""
    operation = page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    if not await operation.locator(".opblock-body").is_visible():
        await operation.locator(".opblock-summary").click()
    # The body renders after the click: count its "Try it out" only once it is there.
    start = operation.get_by_role("button", name="Try it out")
    execute = operation.get_by_role("button", name="Execute")
    await expect(start.or_(execute)).to_be_visible()
    if await start.count():
        await start.click()
    if body is not None:
        await operation.locator("textarea.body-param__text").fill(json.dumps(body))

    def answers(response: Response) -> bool:
        return urlsplit(response.url).path == path and response.request.method == method.upper()

    async with page.expect_response(answers) as answer:
        await operation.get_by_role("button", name="Execute").click()
    return (await answer.value).status


async def test_try_it_out_sends_the_csrf_token_signed_out_and_signed_in(
    page: Page, live_server: LiveServer
) -> None:
    alice = live_server.run(create_influencer(live_server.ctx, "alice"))
    await page.goto(live_server.url("/docs"))
    sign_in = {"email": alice.email, "password": alice.password, "role": "influencer"}
    wrong = {**sign_in, "password": "not-" + alice.password}
    # A refused CSRF check would answer 403 to each.
    assert await try_it_out(page, "post", "/api/auth/login", wrong) == 401
    assert await try_it_out(page, "post", "/api/auth/login", sign_in) == 200
    assert await try_it_out(page, "post", "/api/auth/logout", None) == 204


async def test_inline_code_in_a_page_is_reported(browser: Browser, live_server: LiveServer) -> None:
    context = await browser.new_context()
    try:
        violations = await watch_csp(context)
        page = await context.new_page()
        await page.goto(live_server.url("/login"))
        await page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.ran = true";
                document.body.append(script);
                document.body.setAttribute("style", "color: red");
            }"""
        )
        async with asyncio.timeout(10):
            while len(violations) < 2:
                await asyncio.sleep(0.05)
        assert await page.evaluate("window.ran === undefined")
        assert any("script-src" in v for v in violations), violations
        assert any("style-src" in v for v in violations), violations
    finally:
        await context.close()
