"""Routes whose requests skip FastAPI's per-request machinery, for the URLs crowds call:
`PlainRoute` (documented like any route, run without dependency injection) and
`FrontRoutes` (serves such routes ahead of FastAPI's router)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from livestage.web.asgi import WatchedSend

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class PlainRoute(APIRoute):
    """An `APIRoute` whose endpoint is a plain Starlette one, `(request) -> response`: the
    OpenAPI document describes it from `response_model` and `openapi_extra`, but requests run
    the endpoint directly, without dependency injection, response validation or FastAPI's
    per-request exit stacks. For the few URLs a crowd calls at once (the viewer join), where
    FastAPI's per-request cost was more than the work itself (bench/results/NOTES.md). Errors
    reach the app's exception handlers like any route's."""

    def __init__(self, path: str, endpoint: Endpoint, **options: Any) -> None:
        self.plain_endpoint = endpoint
        super().__init__(path, endpoint, **options)
        self.app = self._serve

    def get_route_handler(self) -> Endpoint:
        return self.plain_endpoint

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.plain_endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


class FrontRoutes:
    """Pure ASGI middleware: serves `routes` ahead of FastAPI's router, inside the app's
    outer middleware (security headers, Server-Timing). Each route object is the one FastAPI
    also holds for the OpenAPI document, so a URL still has one definition and one code path;
    what it skips is FastAPI's per-request layers (exception middleware, exit stacks, the
    router's walk over every route). Errors get the app's own handlers, looked up as Starlette
    does; anything unhandled goes on to the server-error middleware."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app, self.routes = app, tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await _handle(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _handle(route: BaseRoute, scope: Scope, receive: Receive, send: Send) -> None:
    watched = WatchedSend(send)
    try:
        await route.handle(scope, receive, watched)
    except Exception as error:
        handler = _handler_for(scope["app"].exception_handlers, error)
        if handler is None or watched.started:
            raise
        response = await handler(Request(scope, receive), error)
        await response(scope, receive, send)


def _handler_for(handlers: Mapping[Any, Any], error: Exception) -> Any:
    """The handler registered for the error's class or its nearest base, as Starlette's
    exception middleware picks it; `Exception` itself is the server-error middleware's."""
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
