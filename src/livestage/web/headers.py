"""Headers every response carries (the Content-Security-Policy among them), the pre-login CSRF
cookie, and Server-Timing."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestage.config import Settings
from livestage.kit.waits import close_ledger, open_ledger, waited_seconds
from livestage.web.csrf import CSRF_COOKIE

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
# JSON is data, never a page: opened on its own it may load nothing and be framed nowhere (as
# GitHub's API answers; OWASP's REST cheat sheet). Stricter than a page's policy, and a seventh
# of its length: uvicorn checks every header value byte by byte (the join's headers: 5.3 µs
# in its loop with the page's policy, 4.5 with this one).
JSON_POLICY = b"default-src 'none'; frame-ancestors 'none'"
JSON_CONTENT = (b"content-type", b"application/json")

# Where the 100ms SDK connects in production: its init, signalling (WebSocket) and event hosts.
HMS_CONNECT_SOURCES = ("https://*.100ms.live", "wss://*.100ms.live")
# A host[:port] that cannot end the directive or the header it is written into.
SOURCE_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")


def content_security_policy(settings: Settings, *, hms_in_browser: bool) -> str:
    """The policy every response carries: pages run only livestage's own scripts and styles, so
    an injected `<script>`, `style=` or `onclick=` does nothing. With 100ms in the browser
    (`hms_in_browser`), the SDK's module may come from `LIVESTAGE_HMS_SDK_URL`'s origin, it may
    reach 100ms and the room-code endpoint (`LIVESTAGE_HMS_AUTH_URL`), and start its workers
    from blob: URLs (it builds them in the page)."""
    script, connect, worker = ["'self'"], ["'self'"], ["'self'"]
    if hms_in_browser:
        script += _origin(settings.hms_sdk_url)
        connect += [*_origin(settings.hms_auth_url), *HMS_CONNECT_SOURCES]
        worker.append("blob:")
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:", "mediastream:"],
        "connect-src": connect,
        "worker-src": worker,
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items()
    )


def _origin(url: str) -> list[str]:
    """The URL's origin as a CSP source; none for a URL on this site (a path: 'self' covers it)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not SOURCE_HOST.fullmatch(host):
        return []
    return [f"{parts.scheme}://{host}"]


class ResponseHeaders:
    """What every response gets (the security headers and the policy, encoded once) and what a
    request may add (the pre-login CSRF cookie it created)."""

    def __init__(self, *, cookie_secure: bool, policy: str) -> None:
        self.cookie_secure = cookie_secure
        self.security = (*SECURITY_HEADERS, (b"content-security-policy", policy.encode("latin-1")))
        self.json_security = (*SECURITY_HEADERS, (b"content-security-policy", JSON_POLICY))

    def complete(self, raw: list[tuple[bytes, bytes]], scope: Scope) -> None:
        """Adds to a response's headers the security headers it does not set itself (JSON's
        policy to JSON), and the CSRF cookie the request created."""
        present = {key for key, _ in raw}
        security = self.json_security if JSON_CONTENT in raw else self.security
        raw.extend(header for header in security if header[0] not in present)
        token = scope.get("state", {}).get("new_csrf_cookie")
        if token is not None:
            raw.append((b"set-cookie", self._csrf_cookie(token).encode("latin-1")))

    def completing(self, send: Send, scope: Scope) -> Send:
        """`send`, completing the response's headers as it starts."""

        async def send_completed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ()))
                self.complete(message["headers"], scope)
            await send(message)

        return send_completed

    def _csrf_cookie(self, token: str) -> str:
        cookie = Response()
        cookie.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            secure=self.cookie_secure,
            samesite="strict",
            path="/",
        )
        return cookie.headers["set-cookie"]


class CookieAndSecurityHeaders:
    """Pure ASGI (not `app.middleware("http")`): adds the headers as the response starts, so
    responses, streaming ones included, pass through without being re-wrapped per request.

    Also `Server-Timing: provider;dur=…, app;dur=…` on responses that waited on 100ms
    (kit/waits.py): the wait, and the whole time in the app until the response started, so a
    browser's developer tools, and the bench, tell 100ms's time from livestage's own."""

    def __init__(self, app: ASGIApp, *, headers: ResponseHeaders) -> None:
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))
                self.headers.complete(raw, scope)
                if waited := waited_seconds():
                    spent = time.perf_counter() - started
                    timing = f"provider;dur={waited * 1000:.1f}, app;dur={spent * 1000:.1f}"
                    raw.append((b"server-timing", timing.encode("latin-1")))
            await send(message)

        started = time.perf_counter()
        ledger = open_ledger()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            close_ledger(ledger)
