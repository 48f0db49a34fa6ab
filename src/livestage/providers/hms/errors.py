"""Errors raised by `HmsClient`.

The tree:

* HmsError - anything that went wrong talking to 100ms.
  + HmsTransientError - timeout, connection failure, 429 or 5xx. The client already retried
    it `max_retries` times; a later attempt may succeed. `retry_after` carries 100ms's hint.
    - HmsDeadlineExceeded - the caller's deadline (`kit.deadlines`) came first.
  + HmsResponseError - a 2xx response whose body is not what the API documents.
  + HmsRequestError - a permanent 4xx: retrying the same request will fail again.
    Carries `status_code`, 100ms's `message` and `details`.
    - HmsAuthenticationError - 401/403 that persisted after one management-token re-mint
      (or a dashboard token that cannot be re-minted).
      . HmsPermissionDenied - the 403 case: a valid token that may not do this, or a
        disabled room or room code.
    - HmsNotFound - 404.
    - HmsConflict - 409 (for example `beam already started`).

Messages name the method, path, status and 100ms's own message. They never contain the
management token, an auth token or the app secret: anything shaped like a JWT is redacted.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx

from livestage.kit.time import as_utc, utc_now

_JWT_SHAPE = re.compile(r"[\w-]{8,}\.[\w-]{8,}\.[\w-]+")
_MAX_TEXT = 300


class HmsError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HmsTransientError(HmsError):
    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response, *, now: datetime | None = None) -> Self:
        message, _ = parse_error_body(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now or utc_now())
        return cls(
            f"{_describe(response)}: {message}",
            status_code=response.status_code,
            retry_after=retry_after,
        )

    @classmethod
    def from_exception(cls, exc: httpx.TransportError, *, method: str, path: str) -> Self:
        return cls(f"100ms {method} {path}: {type(exc).__name__}")


class HmsDeadlineExceeded(HmsTransientError):
    @classmethod
    def during(cls, method: str, path: str, *, last: HmsError | None = None) -> Self:
        """`last`: the failed try the deadline left no time to retry."""
        tried = f" (last try: {last.message})" if last is not None else ""
        return cls(f"100ms {method} {path}: no answer before the caller's deadline{tried}")


class HmsResponseError(HmsError):
    pass


class HmsRequestError(HmsError):
    def __init__(
        self, message: str, *, status_code: int, hms_message: str, details: list[str]
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.hms_message = hms_message
        self.details = details

    @classmethod
    def from_response(cls, response: httpx.Response) -> Self:
        hms_message, details = parse_error_body(response)
        summary = f"{_describe(response)}: {hms_message}"
        if details:
            summary += f" ({'; '.join(details)})"
        return cls(
            summary, status_code=response.status_code, hms_message=hms_message, details=details
        )


class HmsAuthenticationError(HmsRequestError):
    pass


class HmsPermissionDenied(HmsAuthenticationError):
    pass


class HmsNotFound(HmsRequestError):
    pass


class HmsConflict(HmsRequestError):
    pass


_BY_STATUS: dict[int, type[HmsRequestError]] = {
    401: HmsAuthenticationError,
    403: HmsPermissionDenied,
    404: HmsNotFound,
    409: HmsConflict,
}


def is_transient_status(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def error_from_response(response: httpx.Response, *, now: datetime | None = None) -> HmsError:
    """The error class that matches a non-2xx response."""
    if is_transient_status(response.status_code):
        return HmsTransientError.from_response(response, now=now)
    return _BY_STATUS.get(response.status_code, HmsRequestError).from_response(response)


def parse_error_body(response: httpx.Response) -> tuple[str, list[str]]:
    """100ms's `{code, message, details?, data.description?}`, tolerating any other body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()[:_MAX_TEXT]
        return redact(text or response.reason_phrase), []
    if not isinstance(body, dict):
        return response.reason_phrase, []
    message = body.get("message")
    message = message if isinstance(message, str) and message else response.reason_phrase
    return redact(message), [redact(d) for d in _details(body)]


def _details(body: dict[str, Any]) -> list[str]:
    details = body.get("details")
    found = [str(d) for d in details] if isinstance(details, list) else []
    if isinstance(details, str):
        found.append(details)
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("description"), str):
        found.append(data["description"])
    return [d[:_MAX_TEXT] for d in found]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds to wait: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(when) - as_utc(now)).total_seconds())


def redact(text: str) -> str:
    return _JWT_SHAPE.sub("[redacted]", text)


def _describe(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:
        return f"100ms answered {response.status_code}"
    return f"100ms {request.method} {request.url.path} answered {response.status_code}"
