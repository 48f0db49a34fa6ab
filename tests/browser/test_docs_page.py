"""/docs in Chromium: Swagger UI lists the API's operations with nothing but loopback to reach
(livestage serves Swagger UI's files itself) and under the Content-Security-Policy, which
`isolated_page` fails the test on if anything breaks it. Also checks that watch: a page that
runs inline code is reported."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, expect

from tests.support.browser import watch_csp
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
