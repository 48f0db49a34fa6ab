"""Join tokens of the local provider: the claim shape of a 100ms auth token (`type: app`,
version 2), HS256-signed with a key derived from LIVESTAGE_SECRET_KEY, never the key itself.

Pure functions of their inputs and an injected time, like `providers.hms.tokens`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from livestage.kit.time import from_epoch
from livestage.providers.hms.tokens import ALGORITHM, mint_auth_token

ACCESS_KEY = "local"
KEY_PURPOSE = b"livestage/local-provider/join-token/v1"
# Clocks of a browser's machine are not involved (the server checks its own tokens), but a token
# minted a moment ago is back-dated by 10 s (like 100ms's): allow the same small margin.
LEEWAY = timedelta(seconds=10)
MAX_TOKEN_CHARS = 4096


class TokenRefused(ValueError):
    """Why a join token cannot be used; the message is short enough for a WebSocket close."""


@dataclass(frozen=True, slots=True)
class JoinClaims:
    room_id: str
    role: str
    user_id: str
    expires_at: datetime


def derive_signing_key(secret_key: str) -> str:
    """HMAC-SHA256 of a purpose label under the app's secret key (hex, 32 bytes of entropy)."""
    if not secret_key:
        raise ValueError("the secret key must not be empty")
    return hmac.new(secret_key.encode(), KEY_PURPOSE, hashlib.sha256).hexdigest()


def mint_join_token(
    *, signing_key: str, room_id: str, role: str, user_id: str, ttl: timedelta, now: datetime
) -> str:
    return mint_auth_token(
        access_key=ACCESS_KEY,
        app_secret=signing_key,
        room_id=room_id,
        role=role,
        user_id=user_id,
        ttl=ttl,
        now=now,
    )


def verify_join_token(
    token: str,
    *,
    signing_keys: tuple[str, ...],
    room_id: str,
    roles: frozenset[str],
    now: datetime,
) -> JoinClaims:
    """The token's claims when it lets someone into `room_id` now; `TokenRefused` otherwise.

    `signing_keys` are tried in order (the current key first, then rotated-out ones).
    """
    if not token or not token.strip():
        raise TokenRefused("missing token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused("token too long")
    claims = _verified_claims(token.strip(), signing_keys)
    if claims.get("type") != "app" or claims.get("version") != 2:
        raise TokenRefused("not a join token")
    if claims.get("access_key") != ACCESS_KEY:
        raise TokenRefused("token not issued by this server")
    exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf", claims.get("iat")))
    if exp is None:
        raise TokenRefused("token has no expiry")
    at = now.timestamp()
    if at >= exp + LEEWAY.total_seconds():
        raise TokenRefused("token expired")
    if nbf is not None and at < nbf - LEEWAY.total_seconds():
        raise TokenRefused("token not valid yet")
    if claims.get("room_id") != room_id:
        raise TokenRefused("token is for another room")
    role, user_id = claims.get("role"), claims.get("user_id")
    if not isinstance(role, str) or role not in roles:
        raise TokenRefused("token role cannot join this room")
    if not isinstance(user_id, str) or not user_id:
        raise TokenRefused("token has no user id")
    return JoinClaims(room_id, role, user_id, from_epoch(exp))


def _verified_claims(token: str, signing_keys: tuple[str, ...]) -> dict[str, Any]:
    for key in signing_keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                # Expiry is checked against the app's clock below, not the wall clock.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed token") from None
        return claims
    raise TokenRefused("token signature is not valid")


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
