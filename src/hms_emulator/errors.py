from __future__ import annotations

from collections.abc import Sequence


class ApiError(Exception):
    """An error answered with 100ms's body shape: `{"code", "message", "details"?}`."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Sequence[str] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details) if details is not None else None
        self.headers = headers

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.status, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def invalid_body(detail: str) -> ApiError:
    return ApiError(400, "Invalid body param", [f"Invalid body param: {detail}"])


def invalid_query(name: str) -> ApiError:
    return ApiError(400, "Invalid query parameter", [name])


def token_error(detail: str) -> ApiError:
    return ApiError(401, "Token validation error", [detail])
