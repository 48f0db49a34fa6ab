"""Who a viewer is (SPEC §4): the signed-in user, else a long-lived signed anonymous cookie.

The identity is the `user_id` of the viewer's join token, so the provider's peers carry it
back and every reload, tab and reconnect of one viewer is one viewer in the figures."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import Response

from livestage.config import Settings
from livestage.kit.signing import derive_key, sign, unsign

VIEWER_COOKIE = "livestage_viewer"
COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
PURPOSE = b"livestage viewer cookie v1"
ANONYMOUS = re.compile(r"viewer-[0-9a-f]{16}")


def new_viewer_id() -> str:
    return f"viewer-{secrets.token_hex(8)}"


def user_viewer_id(user_id: uuid.UUID) -> str:
    return f"user-{user_id}"


@dataclass(frozen=True, slots=True)
class ViewerIdentity:
    id: str
    # The response must set the cookie: there was none, or it was not one we signed.
    new_cookie: bool


@dataclass(frozen=True, slots=True)
class ViewerCookie:
    """Reads and writes the anonymous viewer cookie; built once by the lifespan."""

    keys: tuple[bytes, ...]
    secure: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> ViewerCookie:
        keys = tuple(derive_key(secret, PURPOSE) for secret in settings.secret_keys)
        return cls(keys, settings.cookie_secure)

    def viewer_of(self, cookies: Mapping[str, str]) -> str | None:
        """The anonymous viewer the cookie names; None when absent, forged or altered."""
        raw = cookies.get(VIEWER_COOKIE)
        value = unsign(raw, self.keys) if raw else None
        return value if value is not None and ANONYMOUS.fullmatch(value) else None

    def identify(self, cookies: Mapping[str, str], user_id: uuid.UUID | None) -> ViewerIdentity:
        if user_id is not None:
            return ViewerIdentity(user_viewer_id(user_id), new_cookie=False)
        if (known := self.viewer_of(cookies)) is not None:
            return ViewerIdentity(known, new_cookie=False)
        return ViewerIdentity(new_viewer_id(), new_cookie=True)

    def remember(self, response: Response, identity: ViewerIdentity) -> None:
        """Sets the cookie when the identity is new (`header_for`)."""
        if (header := self.header_for(identity)) is not None:
            response.raw_headers.append(header)

    def header_for(self, identity: ViewerIdentity) -> tuple[bytes, bytes] | None:
        """The Set-Cookie header when the identity is new. Written directly, as Starlette's
        `set_cookie` writes it for these attributes: its `http.cookies` round trip was a tenth
        of a flash-crowd join. The value needs no quoting: the identity matches ANONYMOUS and
        the MAC is base64url."""
        if not identity.new_cookie:
            return None
        value = sign(identity.id, self.keys[0])
        return (b"set-cookie", f"{VIEWER_COOKIE}={value}; {_ATTRIBUTES[self.secure]}".encode())


_ATTRIBUTES = {
    secure: f"HttpOnly; Max-Age={COOKIE_MAX_AGE_SECONDS}; Path=/; SameSite=lax"
    + ("; Secure" if secure else "")
    for secure in (False, True)
}
