"""The one place errors become responses: JSON under /api and /webhooks, HTML pages elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from livestage.errors import LivestageError
from livestage.models import UserRole
from livestage.web.deps import NotSignedIn
from livestage.web.templating import render

log = structlog.get_logger()
LOGIN_PAGES = {UserRole.admin: "/admin/login", UserRole.influencer: "/login"}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/"))


def _respond(request: Request, status: int, message: str, **extra: Any) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message, **extra}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _problem(exc: LivestageError) -> dict[str, str]:
    code = getattr(exc, "problem", None)
    return {"code": str(code)} if code else {}


def error_body(exc: LivestageError) -> tuple[int, bytes]:
    """The status and JSON body of `exc`, for responses made outside FastAPI (the join's fast
    path): the same body `livestage_error` sends under /api."""
    body = JSONResponse({"detail": exc.message, **_problem(exc)}).body
    return exc.status_code, bytes(body)


UNEXPECTED_MESSAGE = "Something went wrong on our side; it has been logged."
UNEXPECTED = (500, bytes(JSONResponse({"detail": UNEXPECTED_MESSAGE}).body))


async def livestage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivestageError)
    if isinstance(exc, NotSignedIn) and not wants_json(request):
        target = f"{LOGIN_PAGES[exc.role]}?next={quote(request.url.path)}"
        return RedirectResponse(target, status_code=303)
    return _respond(request, exc.status_code, exc.message, **_problem(exc))


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
    return _respond(request, exc.status_code, message)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("http.unhandled_error", path=request.url.path, error=type(exc).__name__)
    return _respond(request, 500, UNEXPECTED_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LivestageError, livestage_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
