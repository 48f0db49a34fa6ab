"""Fault injection: queued for the next N matching requests, or asked for per request by header.

Kinds: `status` answers at once with an error status (and `Retry-After` when given) without
touching state; `latency` waits, then serves the request normally; `timeout` holds the request
until the client gives up (or `seconds` pass, then 504) and never touches state.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.types import Receive, Send

from hms_emulator.errors import ApiError

FAULT_HEADER = "x-emulator-fault"
KINDS = ("status", "latency", "timeout")

_STATUS_MESSAGES = {
    401: "Token validation error",
    403: "user does not have required permission",
    429: "rate limit exceeded",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
# The only documented 429 (analytics webhook history and replay) has its own text.
_ANALYTICS_WEBHOOKS = "/v2/analytics/webhooks"
_ANALYTICS_RATE_LIMIT = "rate limit exceeded, retry after 45 seconds"


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        if self.kind == "status":
            return f"status={self.status}"
        return f"{self.kind}={self.seconds:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
        }


@dataclass
class QueuedFault:
    fault: Fault
    path_prefix: str
    method: str | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.fault.to_json(),
            "path_prefix": self.path_prefix,
            "method": self.method,
            "count": self.remaining,
        }


class FaultQueue:
    def __init__(self) -> None:
        self._queued: list[QueuedFault] = []

    def add(self, queued: QueuedFault) -> None:
        self._queued.append(queued)

    def take(self, method: str, path: str) -> Fault | None:
        for queued in self._queued:
            if queued.matches(method, path):
                queued.remaining -= 1
                if queued.remaining <= 0:
                    self._queued.remove(queued)
                return queued.fault
        return None

    def clear(self) -> None:
        self._queued.clear()

    def to_json(self) -> list[dict[str, Any]]:
        return [q.to_json() for q in self._queued]


def fault_from_header(value: str, *, default_timeout: float) -> Fault:
    """Parse `status=429;retry_after=1`, `latency=0.5` or `timeout=5`."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, raw = part.strip().partition("=")
        if not sep:
            raise ApiError(400, f"bad {FAULT_HEADER} header", [part])
        fields[key.strip().lower()] = raw.strip()
    kind = next((k for k in KINDS if k in fields), None)
    if kind is None:
        raise ApiError(400, f"bad {FAULT_HEADER} header", ["no status, latency or timeout"])
    spec: dict[str, Any] = {"kind": kind}
    if kind == "status":
        spec["status"] = fields["status"]
    else:
        spec["seconds"] = fields[kind] or None
    if "retry_after" in fields:
        spec["retry_after"] = fields["retry_after"]
    return build_fault(spec, default_timeout=default_timeout)


def queued_fault_from_json(body: dict[str, Any], *, default_timeout: float) -> QueuedFault:
    prefix = body.get("path_prefix", "/v2")
    method = body.get("method")
    count = body.get("count", 1)
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ApiError(400, "path_prefix must be a path starting with /")
    if method is not None and not isinstance(method, str):
        raise ApiError(400, "method must be a string")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ApiError(400, "count must be a positive integer")
    fault = build_fault(body, default_timeout=default_timeout)
    return QueuedFault(fault, prefix, method.upper() if method else None, count)


def build_fault(spec: dict[str, Any], *, default_timeout: float) -> Fault:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ApiError(400, "kind must be one of status, latency, timeout")
    try:
        status = int(spec.get("status") or 503)
        retry_after = _optional_float(spec.get("retry_after"))
        seconds = _optional_float(spec.get("seconds"))
    except (TypeError, ValueError):
        raise ApiError(400, "status, retry_after and seconds must be numbers") from None
    if kind == "status" and not 400 <= status <= 599:
        raise ApiError(400, "status must be 4xx or 5xx")
    if seconds is None:
        seconds = default_timeout if kind == "timeout" else 0.0
    return Fault(str(kind), status, retry_after, max(seconds, 0.0))


def _optional_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    return float(value)


def _status_message(status: int, path: str) -> str:
    if status == 429 and path.startswith(_ANALYTICS_WEBHOOKS):
        return _ANALYTICS_RATE_LIMIT
    return _STATUS_MESSAGES.get(status) or HTTPStatus(status).phrase.lower()


async def send_status_fault(fault: Fault, send: Send, path: str = "") -> int:
    headers: list[tuple[bytes, bytes]] = []
    if fault.retry_after is not None:
        headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
    message = _status_message(fault.status, path)
    body: dict[str, Any] = {"code": fault.status, "message": message}
    if fault.status == 401:
        body["details"] = ["forced by emulator fault"]
    await _send_json(send, fault.status, body, headers)
    return fault.status


async def hold_until_timeout(fault: Fault, receive: Receive, send: Send) -> int:
    """Hold the request open; answer 504 only if the client is still waiting after `seconds`."""
    try:
        await asyncio.wait_for(_wait_for_disconnect(receive), timeout=fault.seconds)
    except TimeoutError:
        await _send_json(send, 504, {"code": 504, "message": "emulated timeout"}, [])
        return 504
    return 499


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    raw = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
