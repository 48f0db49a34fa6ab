"""One error base. Services raise these; one handler renders HTML for pages, JSON for the API."""

from __future__ import annotations


class LivestageError(Exception):
    status_code = 400
    # A failed sign-in must still count against the throttle and reach the audit log, so its
    # transaction is committed even though the request fails.
    keeps_changes = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequest(LivestageError):
    status_code = 400


class Unauthorized(LivestageError):
    status_code = 401


class SignInRequired(Unauthorized):
    """Pages answer it with a redirect to `login_path`; the JSON API with a 401."""

    def __init__(self, login_path: str) -> None:
        super().__init__("Sign in to continue.")
        self.login_path = login_path


class Forbidden(LivestageError):
    status_code = 403


class NotFound(LivestageError):
    status_code = 404


class Conflict(LivestageError):
    status_code = 409


class PayloadTooLarge(LivestageError):
    status_code = 413


class UnsupportedMediaType(LivestageError):
    status_code = 415


class TooManyRequests(LivestageError):
    status_code = 429


class ServiceUnavailable(LivestageError):
    status_code = 503
