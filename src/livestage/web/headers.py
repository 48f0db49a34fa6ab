"""Headers every response carries, the pre-login CSRF cookie, and Server-Timing."""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestage.kit.waits import close_ledger, open_ledger, waited_seconds
from livestage.web.csrf import CSRF_COOKIE

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class CookieAndSecurityHeaders:
    """Pure ASGI (not `app.middleware("http")`): adds the headers as the response starts, so
    responses, streaming ones included, pass through without being re-wrapped per request.

    Also `Server-Timing: provider;dur=…, app;dur=…` on responses that waited on 100ms
    (kit/waits.py): the wait, and the whole time in the app until the response started, so a
    browser's developer tools, and the bench, tell 100ms's time from livestage's own."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool) -> None:
        self.app, self.cookie_secure = app, cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))
                present = {key for key, _ in raw}
                raw.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                token = scope.get("state", {}).get("new_csrf_cookie")
                if token is not None:
                    raw.append((b"set-cookie", self._csrf_cookie(token).encode("latin-1")))
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
