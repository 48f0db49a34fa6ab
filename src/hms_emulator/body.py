"""Request-body parsing with 100ms's error texts."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from hms_emulator.errors import ApiError, invalid_body


async def json_body(request: Request, *, must_not_be_empty: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if must_not_be_empty:
            raise ApiError(400, "request body must not be empty")
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", getattr(exc, "start", 0))
        raise ApiError(
            400, "request body contains badly-formed JSON", [f"at position {position}"]
        ) from None
    if not isinstance(body, dict):
        raise invalid_body("body must be a JSON object")
    return body


def opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_body(key)
    return value


def opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid_body(key)
    return value


def opt_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise invalid_body(key)
    return value


def opt_dict(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise invalid_body(key)
    return value


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)
