"""Debian's Chromium driven by Playwright's async API, for the few browser journeys we keep.

The async API, not the sync one: between two calls the sync API leaves its own event loop marked
as running in the main thread, so pytest-asyncio could run no async test after the first browser
test of the session. The app under test runs on its own loop in another thread (`live_server`).

Fixtures:
- `browser` (session): headless Chromium from `/usr/bin/chromium` (or `$LIVESTAGE_TEST_CHROMIUM`).
  A missing binary fails the tests; it never skips them.
- `page`: a page in a fresh context, 10 s default timeouts; requests to non-loopback hosts are
  aborted (the network guard's rule, in the browser) unless a page route such as
  `replace_module()` answers them. Any Content-Security-Policy violation in the context's pages
  fails the test when the page closes (`watch_csp()`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    async_playwright,
    expect,
)

from tests.support.network_guard import is_loopback

CHROMIUM = os.environ.get("LIVESTAGE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
TIMEOUT_MS = 10_000


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it "
            "(apt-get install chromium, or set LIVESTAGE_TEST_CHROMIUM).",
            pytrace=False,
        )
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        yield chromium
        await chromium.close()


async def _loopback_only(route: Route) -> None:
    if is_loopback(urlsplit(route.request.url).hostname or ""):
        await route.continue_()
    else:
        await route.abort("blockedbyclient")


# Every page of the context reports the violations the browser finds (the event fires where the
# refused code or resource was, and bubbles to the document); the binding outlives navigations.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile || event.documentURI}:${event.lineNumber}`;
  const what = `${event.blockedURI || "inline code"} ${event.sample || ""}`.trim();
  window.__livestageCspViolation(`${event.effectiveDirective} refused ${what} (${where})`);
}, true);
"""
CSP_CONSOLE_MARKS = ("Content Security Policy", "Refused to")


async def watch_csp(context: BrowserContext) -> list[str]:
    """The Content-Security-Policy violations in the context's pages, as they happen: the
    `securitypolicyviolation` events, and console messages saying a policy refused something."""
    violations: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if any(mark in message.text for mark in CSP_CONSOLE_MARKS):
            violations.append(f"console: {message.text}")

    await context.expose_binding(
        "__livestageCspViolation", lambda _source, text: violations.append(text)
    )
    await context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("console", console)
    return violations


@asynccontextmanager
async def isolated_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a context of its own (own cookies) that can reach only loopback. A test whose
    pages met a Content-Security-Policy violation fails, listing them, when it closes."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    await context.route("**/*", _loopback_only)
    violations = await watch_csp(context)
    try:
        yield await context.new_page()
    finally:
        await context.close()
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations), pytrace=False)


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with isolated_page(browser) as new_page:
        yield new_page


@dataclass
class ReplacedModule:
    url: str
    source: str
    requests: list[str] = field(default_factory=list)


async def replace_module(page: Page, url: str, js_source: str) -> ReplacedModule:
    """Serve `js_source` as the ES module at exactly `url`; `.requests` records each load."""
    replaced = ReplacedModule(url, js_source)

    async def fulfill(route: Route) -> None:
        replaced.requests.append(route.request.url)
        await route.fulfill(
            status=200,
            content_type="text/javascript; charset=utf-8",
            headers={"access-control-allow-origin": "*", "cache-control": "no-store"},
            body=js_source,
        )

    await page.route(lambda candidate: candidate == url, fulfill)
    return replaced
