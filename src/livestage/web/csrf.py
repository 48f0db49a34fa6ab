"""The CSRF token's HTTP side: where a request carries it, the pre-login cookie, the check.

Which token a signed-in session expects is the auth dependency's business
(`accounts/auth.py`); this module knows only headers, form fields and cookies."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from livestage.errors import Forbidden
from livestage.kit.crypto import constant_time_equals, random_token

CSRF_COOKIE = "livestage_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "The form expired or did not come from this site (CSRF check failed). "
            "Reload the page and try again."
        )


def check_csrf(expected: str | None, submitted: str | None) -> None:
    if not expected or not submitted or not constant_time_equals(expected, submitted):
        raise CsrfRejected()


async def submitted_token(request: Request) -> str | None:
    """The token the request echoes: the `X-CSRF-Token` header, or a form's `csrf_token`."""
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    return submitted


def pre_login_token(connection: HTTPConnection) -> str:
    """The pre-login cookie's token; a new one (set by the response) when there is none."""
    token = connection.cookies.get(CSRF_COOKIE) or getattr(
        connection.state, "new_csrf_cookie", None
    )
    if token is None:
        token = random_token(24)
        connection.state.new_csrf_cookie = token
    return token
