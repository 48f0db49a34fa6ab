"""create_app(): the lifespan owns the engine, the provider client and the clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestage import __version__, migrate
from livestage.accounts import endpoints as accounts_endpoints
from livestage.analytics import endpoints as analytics_endpoints
from livestage.analytics import pages as analytics_pages
from livestage.audit import endpoints as audit_endpoints
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker
from livestage.influencers import endpoints as influencers_api
from livestage.influencers import pages as influencers_pages
from livestage.kit.crypto import SecretBox
from livestage.kit.time import Clock, utc_now
from livestage.kit.waits import close_ledger, open_ledger, waited_seconds
from livestage.logging import configure_logging
from livestage.providers.base import StreamingProvider
from livestage.providers.factory import build_provider
from livestage.providers.local import endpoints as local_signalling
from livestage.streams import endpoints as streams_endpoints
from livestage.streams import pages as streams_pages
from livestage.streams.join_fast_path import ViewerJoinFastPath
from livestage.tracking import endpoints as tracking_endpoints
from livestage.web import system
from livestage.web.context import AppContext
from livestage.web.deps import CSRF_COOKIE, csrf_protect
from livestage.web.errors import install_error_handlers
from livestage.web.headers import SECURITY_HEADERS

STATIC_DIR = Path(__file__).parent / "web" / "static"


ROUTERS: tuple[APIRouter, ...] = (
    system.router,
    accounts_endpoints.pages,
    accounts_endpoints.api,
    influencers_pages.router,
    influencers_api.router,
    audit_endpoints.pages,
    audit_endpoints.api,
    streams_endpoints.router,
    streams_pages.router,
    tracking_endpoints.router,
    analytics_endpoints.router,
    analytics_pages.router,
)


class LivestageApp(FastAPI):
    """FastAPI, with the viewer join's fast path (anonymous joins, the flash-crowd path)
    answered before the middleware stack, routing and dependency injection."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._viewer_joins = ViewerJoinFastPath(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        await self._viewer_joins(scope, receive, send)


class DatabaseNotMigrated(RuntimeError):
    pass


async def ensure_migrated(ctx: AppContext) -> None:
    current = await migrate.current_revision(ctx.engine)
    head = migrate.head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"The database is at migration {current or 'none'} but this livestage needs {head}: "
            "run `livestage migrate` first."
        )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    provider: StreamingProvider | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        chosen = provider if provider is not None else build_provider(settings, clock=clock)
        ctx = AppContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            box=SecretBox(settings.secret_keys),
            provider=chosen,
            clock=clock,
        )
        try:
            await ensure_migrated(ctx)
            app.state.ctx = ctx
            local_signalling.attach(ctx)
            worker = ctx.start_worker()
            try:
                yield
            finally:
                await worker.stop()
                await ctx.inbox.stop()
                await ctx.joins.stop()
                await ctx.broker.stop()
        finally:
            if chosen is not None and provider is None:
                await chosen.aclose()
            await engine.dispose()

    configure_logging(settings.log_level, json=settings.log_json)
    app = LivestageApp(
        title="livestage",
        version=__version__,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(CookieAndSecurityHeaders, cookie_secure=settings.cookie_secure)
    # Routes match in order: the webhook receiver, which takes 100ms's bursts, comes first.
    app.include_router(tracking_endpoints.webhook_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(csrf_protect)])
    # A WebSocket authenticated by its join token (no cookie), so no CSRF dependency.
    app.include_router(local_signalling.router)
    return app


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
                headers = MutableHeaders(scope=message)
                token = scope.get("state", {}).get("new_csrf_cookie")
                if token is not None:
                    headers.append("set-cookie", self._csrf_cookie(token))
                present = {key for key, _ in message["headers"]}
                for key, value in SECURITY_HEADERS:
                    if key not in present:
                        message["headers"].append((key, value))
                if waited := waited_seconds():
                    spent = time.perf_counter() - started
                    headers.append(
                        "server-timing",
                        f"provider;dur={waited * 1000:.1f}, app;dur={spent * 1000:.1f}",
                    )
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
