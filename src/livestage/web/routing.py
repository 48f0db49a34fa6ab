"""`PlainRoute`: a documented route whose requests skip FastAPI's per-request machinery."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class PlainRoute(APIRoute):
    """An `APIRoute` whose endpoint is a plain Starlette one, `(request) -> response`: the
    OpenAPI document describes it from `response_model` and `openapi_extra`, but requests run
    the endpoint directly, without dependency injection or response validation. For the few
    URLs a crowd calls at once (the viewer join), where FastAPI's per-request cost was more
    than the work itself (bench/results/NOTES.md). Errors still reach the app's handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint
