"""HS256 token checks the way the 100ms servers apply them, with the emulator's own clock.

Deliberately independent of `livestage.providers.hms`: a bug in the client's minting must show up
here as a 401, not be mirrored.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeGuard

import jwt

from hms_emulator.config import EmulatorConfig

BACKDATE_SECONDS = 10


class TokenRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise TokenRejected("not found")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("authorization header is not a bearer token")
    return token.strip()


def verify_token(token: str, config: EmulatorConfig, *, now: datetime, kind: str) -> dict[str, Any]:
    """Return the claims of a valid `kind` ("management" or "app") token or raise TokenRejected."""
    claims = _decode(token, config.app_secret)
    if claims.get("type") != kind:
        raise TokenRejected(f"token type is not {kind}")
    if claims.get("access_key") != config.access_key:
        raise TokenRejected("access key does not match")
    _check_times(claims, now)
    return claims


def _decode(token: str, secret: str) -> dict[str, Any]:
    # Times are checked against the injected clock in _check_times, not the wall clock.
    options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options=options)
    except jwt.InvalidSignatureError as exc:
        raise TokenRejected("signature is invalid") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRejected(f"token is malformed: {exc}") from exc
    if not isinstance(claims, dict):
        raise TokenRejected("token payload is not an object")
    return claims


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    epoch = now.timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not _is_number(exp):
        raise TokenRejected("token has no exp")
    if nbf is not None and not _is_number(nbf):
        raise TokenRejected("token nbf is not a number")
    if nbf is not None and epoch < nbf:
        raise TokenRejected("token is not valid yet")
    if epoch >= exp:
        raise TokenRejected("token is expired")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mint_auth_token(
    config: EmulatorConfig, *, room_id: str, role: str, user_id: str, now: datetime
) -> tuple[str, datetime]:
    # Back-dated like every token 100ms's own code mints (the Node SDK's bufferSeconds), so a
    # server whose clock runs a little behind still takes it.
    issued = int(now.timestamp()) - BACKDATE_SECONDS
    expires = issued + config.auth_token_ttl_seconds
    claims = {
        "access_key": config.access_key,
        "type": "app",
        "version": 2,
        "room_id": room_id,
        "role": role,
        "user_id": user_id,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
    }
    token = jwt.encode(claims, config.app_secret, algorithm="HS256")
    return token, datetime.fromtimestamp(expires, UTC)
