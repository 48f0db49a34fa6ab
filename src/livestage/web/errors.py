"""The one place errors become responses: JSON under /api and /webhooks, HTML pages elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from livestage.errors import LivestageError, SignInRequired
from livestage.web.asgi import WatchedSend
from livestage.web.templating import render

log = structlog.get_logger()


class ErrorBody(BaseModel):
    """Every JSON error (under /api and /webhooks), as `_respond` writes it."""

    detail: str = Field(description="What went wrong, in words a person understands.")
    errors: list[str] | None = Field(
        default=None, description="Each invalid field and why (validation errors only)."
    )
    code: str | None = Field(
        default=None, description="A stable name for problems a client may act on."
    )


# Routers that serve JSON pass these as `responses=`: the OpenAPI document then describes the
# body above instead of FastAPI's default 422 body, which this app never sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused; `detail` says why."},
    "5XX": {"model": ErrorBody, "description": "The server or 100ms failed; `detail` says so."},
}


class PageRejected(LivestageError):
    """A form that failed: its page is rendered again with the reason, and, as for every
    error, the request's transaction is rolled back, so nothing changed. Pages raise it with
    what they would have shown before the action; the page handler never touches the session."""

    def __init__(self, error: LivestageError, template: str, context: dict[str, Any]) -> None:
        super().__init__(error.message, status_code=error.status_code)
        self.keeps_changes = error.keeps_changes
        self.template, self.context = template, context


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/"))


def _respond(request: Request, status: int, message: str, **extra: Any) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message, **extra}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _problem(exc: LivestageError) -> dict[str, str]:
    code = getattr(exc, "problem", None)
    return {"code": str(code)} if code else {}


UNEXPECTED_MESSAGE = "Something went wrong on our side; it has been logged."


async def livestage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivestageError)
    if isinstance(exc, SignInRequired) and not wants_json(request):
        target = f"{exc.login_path}?next={quote(request.url.path)}"
        return RedirectResponse(target, status_code=303)
    if isinstance(exc, PageRejected):
        context = {**exc.context, "error": exc.message}
        return render(request, exc.template, context, status_code=exc.status_code)
    response = _respond(request, exc.status_code, exc.message, **_problem(exc))
    response.headers.update(getattr(exc, "headers", None) or {})  # e.g. a 429's Retry-After
    return response


def _field_message(error: dict[str, Any]) -> str:
    location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{location or 'request'}: {error.get('msg', 'invalid value')}"


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = [_field_message(e) for e in exc.errors()]
    status = 422 if wants_json(request) else 400
    return _respond(request, status, "Invalid input: " + "; ".join(messages), errors=messages)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code, str(exc.detail))
    response = _respond(request, exc.status_code, message)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str:
    """Every method the URL answers. FastAPI makes one route per method, and Starlette's 405
    names only the methods of the first route on the path."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("http.unhandled_error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return _respond(request, 500, UNEXPECTED_MESSAGE)


class UnexpectedErrors:
    """Pure ASGI middleware: answers an error no handler took with the 500 response and does
    not re-raise it. Starlette's server-error middleware re-raises after answering, and uvicorn
    then logs the error a second time and drops the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if watched.started:
                raise
            response = await unexpected_error(Request(scope, receive), exc)
            await response(scope, receive, send)


def errors_as_json(document: dict[str, Any]) -> dict[str, Any]:
    """Documents every error as the JSON `ErrorBody` it is. FastAPI puts a `responses=` model
    under the route's own media type, which for the event stream is `text/event-stream`."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status in ERROR_RESPONSES:
                    schema = {"$ref": "#/components/schemas/ErrorBody"}
                    response["content"] = {"application/json": {"schema": schema}}
    return document


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LivestageError, livestage_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
    document = app.openapi
    app.openapi = lambda: errors_as_json(document())  # type: ignore[method-assign]
