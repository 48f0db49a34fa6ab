"""`POST /api/watch/{handle}/join` for anonymous viewers, served as plain ASGI in front of
FastAPI's routing, dependency injection and response validation.

The viewer join is the flash-crowd path: every viewer of a popular stream calls it at once.
Profiles (bench/results/NOTES.md) showed FastAPI's per-request machinery costing more than the
join itself (a cached lookup and one HS256 signature), so anonymous joins skip it. They run the
same service call, the same CSRF check and the same error bodies as the FastAPI route, which
stays for signed-in viewers (their session is looked up) and for the OpenAPI document.
"""

from __future__ import annotations

import re

import structlog
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from livestage.errors import LivestageError
from livestage.streams.service import stream as stream_service
from livestage.web.context import AppContext
from livestage.web.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, check_csrf
from livestage.web.errors import UNEXPECTED, error_body
from livestage.web.headers import SECURITY_HEADERS

log = structlog.get_logger()
JOIN_PATH = re.compile(r"/api/watch/([^/]+)/join")
JSON_HEADERS = [(b"content-type", b"application/json"), *SECURITY_HEADERS]


class ViewerJoinFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            JOIN_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        cookies = cookie_parser(_header(scope, "cookie") or "") if found else {}
        submitted = _header(scope, CSRF_HEADER) if found else None
        # Signed-in viewers, and a token sent as a form field rather than the header: the route.
        if found is None or submitted is None or SESSION_COOKIE in cookies:
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        try:
            check_csrf(cookies.get(CSRF_COOKIE), submitted)
            joined = await stream_service.viewer_join(
                ctx.read_sessionmaker,
                found.group(1),
                config=ctx.go_live_config,
                cache=ctx.watch_cache,
                joins=ctx.joins,
                now=ctx.clock(),
            )
            status, body = 200, joined.model_dump_json().encode()
        except LivestageError as error:
            status, body = error_body(error)
        except Exception as error:
            log.exception("http.unhandled_error", path=scope["path"], error=type(error).__name__)
            status, body = UNEXPECTED
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: str) -> str | None:
    key = name.encode()
    for header, value in scope["headers"]:
        if header == key:
            return str(value.decode("latin-1"))
    return None
