"""Routes whose requests skip FastAPI's per-request machinery, for the URLs crowds call:
`PlainRoute` (documented like any route, run without dependency injection) and
`FrontRoutes` (serves such routes ahead of FastAPI's router); `RawRoute` and `FrontDoor`, for
the viewer join, skip FastAPI and Starlette altogether."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from livestage.web.asgi import WatchedSend
from livestage.web.headers import JSON_CONTENT, ResponseHeaders

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
        handler = _handler_for(scope["app"].exception_handlers, error, unexpected=False)
        if handler is None or watched.started:
            raise
        response = await handler(Request(scope, receive), error)
        await response(scope, receive, send)


def _handler_for(handlers: Mapping[Any, Any], error: Exception, *, unexpected: bool) -> Any:
    """The handler registered for the error's class or its nearest base, as Starlette's
    exception middleware picks it; `Exception`'s (the server-error middleware's) only when
    `unexpected`."""
    for kind in type(error).__mro__:
        if kind is Exception and not unexpected:
            return None
        if kind in handlers:
            return handlers[kind]
    return None


class RawRequest:
    """What a `RawRoute`'s endpoint reads of a request, taken from the ASGI scope as asked: the
    cookies are parsed once, as Starlette parses them (every Cookie header)."""

    __slots__ = ("scope", "receive", "path_params", "_cookies")

    def __init__(self, scope: Scope, receive: Receive, path_params: dict[str, Any]) -> None:
        self.scope, self.receive, self.path_params = scope, receive, path_params
        self._cookies: dict[str, str] | None = None

    def header(self, name: bytes) -> str | None:
        """The first header of that (lower-case) name, as Starlette's `headers.get` reads it."""
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = {}
            for key, value in self.scope["headers"]:
                if key == b"cookie":
                    self._cookies.update(cookie_parser(value.decode("latin-1")))
        return self._cookies

    def starlette(self) -> Request:
        """The same request as Starlette's object, for the uncommon branches (a signed-in
        session, a form) that reuse code written for it."""
        return Request(self.scope, self.receive)


# An answer: a 200 with this JSON body and these headers besides the content's and the ones
# every response carries (ResponseHeaders). Anything else is raised, as an error.
RawAnswer = tuple[bytes, list[tuple[bytes, bytes]]]
RawEndpoint = Callable[[RawRequest], Coroutine[Any, Any, RawAnswer]]


async def _documented_only(request: Request) -> Response:  # pragma: no cover
    raise AssertionError("a RawRoute is served by the FrontDoor")


class RawRoute(APIRoute):
    """An `APIRoute` for the OpenAPI document (described by `response_model` and
    `openapi_extra`, named and described by its endpoint), whose requests the app's
    `FrontDoor` serves before any of FastAPI's or Starlette's layers: no Request or Response
    objects, no middleware. For the viewer join, where those layers cost more than its own
    work (bench/results/NOTES.md)."""

    def __init__(self, path: str, endpoint: RawEndpoint, **options: Any) -> None:
        self.raw_endpoint = endpoint
        options.setdefault("name", endpoint.__name__)
        options.setdefault("description", inspect.cleandoc(endpoint.__doc__ or ""))
        super().__init__(path, _documented_only, **options)
        self.app = self._serve

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Should the router ever reach it: the same answer, through the app's layers."""
        body, headers = await self.raw_endpoint(
            RawRequest(scope, receive, scope.get("path_params", {}))
        )
        response = Response(body, media_type="application/json")
        response.raw_headers.extend(headers)
        await response(scope, receive, send)


class FrontDoor:
    """Serves `routes` (each a `RawRoute`) before anything else in the app: the answer is
    written with the headers every response carries, encoded once; an error gets the app's
    own handler and those headers, as the middleware gives every other response."""

    def __init__(self, routes: Sequence[RawRoute], *, headers: ResponseHeaders) -> None:
        self.routes, self.headers = tuple(routes), headers

    def match(self, scope: Scope) -> tuple[RawRoute, dict[str, Any]] | None:
        path = get_route_path(scope)
        for route in self.routes:
            if scope["method"] in (route.methods or ()) and (found := route.path_regex.match(path)):
                convert = route.param_convertors
                params = {k: convert[k].convert(v) for k, v in found.groupdict().items()}
                return route, params
        return None

    async def serve(
        self, route: RawRoute, params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["path_params"] = params
        try:
            body, headers = await route.raw_endpoint(RawRequest(scope, receive, params))
        except Exception as error:
            handler = _handler_for(scope["app"].exception_handlers, error, unexpected=True)
            response = await handler(Request(scope, receive), error)
            await response(scope, receive, self.headers.completing(send, scope))
            return
        length = (b"content-length", str(len(body)).encode("latin-1"))
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [length, JSON_CONTENT, *headers, *self.headers.json_security],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})
