"""Validation of admin-set 100ms auth tokens (pure, clock passed in).

Not "starts with eyJ": the token is taken apart and every claim 100ms needs is checked, and the
signature is verified when the app secret is known. Each failure has its own reason code and a
message that tells the admin what is wrong with what they pasted.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import jwt

from livestage.kit.time import from_epoch


class TokenProblem(enum.StrEnum):
    empty = "empty"
    structure = "structure"
    encoding = "encoding"
    header = "header"
    algorithm = "algorithm"
    type = "type"
    version = "version"
    room_id = "room_id"
    role = "role"
    access_key = "access_key"
    expiry = "expiry"
    expired = "expired"
    not_yet_valid = "not_yet_valid"
    signature = "signature"
    too_long = "too_long"


class TokenStatus(enum.StrEnum):
    none = "none"
    valid = "valid"
    expiring_soon = "expiring_soon"
    # Structure, claims and expiry are fine but the signature cannot be checked here: no app
    # secret is configured.
    unverified = "unverified"
    expired = "expired"
    invalid = "invalid"


# What go-live may use; an unverified token too, as before the status existed: without the app
# secret its signature is 100ms's to check when the broadcaster joins.
USABLE = frozenset({TokenStatus.valid, TokenStatus.expiring_soon, TokenStatus.unverified})


class InvalidAuthToken(ValueError):
    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class DecodedAuthToken:
    room_id: str
    role: str
    user_id: str | None
    access_key: str
    issued_at: datetime | None
    expires_at: datetime
    signature_verified: bool


MAX_TOKEN_LENGTH = 4000


def validate_auth_token(
    raw: str, *, now: datetime, access_key: str | None = None, app_secret: str | None = None
) -> DecodedAuthToken:
    token = raw.strip()
    if not token:
        raise InvalidAuthToken(
            TokenProblem.empty, "Paste the 100ms auth token; the field is empty."
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidAuthToken(
            TokenProblem.too_long,
            f"This is longer than any 100ms auth token ({MAX_TOKEN_LENGTH} characters at most).",
        )
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidAuthToken(
            TokenProblem.structure,
            "A 100ms auth token has three parts separated by dots (header.payload.signature); "
            f"this has {len([p for p in parts if p])}.",
        )
    header = _decode_part(parts[0], "header")
    claims = _decode_part(parts[1], "payload")
    _check_header(header)
    _check_signature_part(parts[2])
    decoded = _check_claims(claims, now=now, access_key=access_key)
    if app_secret:
        _verify_signature(token, app_secret)
    return replace(decoded, signature_verified=bool(app_secret))


def token_status(
    expires_at: datetime | None,
    *,
    now: datetime,
    soon: timedelta,
    valid: bool = True,
    verified: bool = True,
) -> TokenStatus:
    if expires_at is None:
        return TokenStatus.none
    if not valid:
        return TokenStatus.invalid
    if expires_at <= now:
        return TokenStatus.expired
    if not verified:
        return TokenStatus.unverified
    if expires_at - now < soon:
        return TokenStatus.expiring_soon
    return TokenStatus.valid


def masked_preview(token: str) -> str:
    token = token.strip()
    return f"{token[:8]}…{token[-6:]}"


def _b64decode(part: str) -> bytes:
    if not all(c.isalnum() or c in "-_" for c in part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _decode_part(part: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidAuthToken(
            TokenProblem.encoding,
            f"The token's {name} is not base64url-encoded JSON; it was probably cut or altered "
            "when copied. Copy the whole token again.",
        ) from exc
    if not isinstance(value, dict):
        raise InvalidAuthToken(TokenProblem.encoding, f"The token's {name} is not a JSON object.")
    return value


def _check_signature_part(part: str) -> None:
    try:
        signature = _b64decode(part)
    except (ValueError, binascii.Error) as exc:
        raise InvalidAuthToken(
            TokenProblem.encoding, "The token's signature is not base64url-encoded."
        ) from exc
    if len(signature) != 32:
        raise InvalidAuthToken(
            TokenProblem.signature,
            "The token's signature has the wrong length for HS256; the token was cut or altered.",
        )


def _check_header(header: dict[str, Any]) -> None:
    if "alg" not in header:
        raise InvalidAuthToken(TokenProblem.header, "The token header has no algorithm (alg).")
    if header["alg"] != "HS256":
        raise InvalidAuthToken(
            TokenProblem.algorithm,
            f"100ms auth tokens are signed with HS256; this one says {str(header['alg'])[:20]!r}.",
        )


def _check_claims(
    claims: dict[str, Any], *, now: datetime, access_key: str | None
) -> DecodedAuthToken:
    kind = claims.get("type")
    if kind != "app":
        hint = (
            " (it is a management token, which cannot join a room)" if kind == "management" else ""
        )
        raise InvalidAuthToken(
            TokenProblem.type, f'The token\'s type must be "app" for an auth token{hint}.'
        )
    if claims.get("version") != 2 or isinstance(claims.get("version"), bool):
        raise InvalidAuthToken(TokenProblem.version, "The token's version must be 2.")
    room_id = _non_empty_string(claims, "room_id", TokenProblem.room_id, "room_id (the 100ms room)")
    role = _non_empty_string(claims, "role", TokenProblem.role, "role")
    key = claims.get("access_key")
    if not isinstance(key, str) or not key:
        raise InvalidAuthToken(TokenProblem.access_key, "The token has no access_key claim.")
    if access_key and key != access_key:
        raise InvalidAuthToken(
            TokenProblem.access_key,
            "The token was made for a different 100ms app: its access_key does not match "
            "LIVESTAGE_HMS_ACCESS_KEY.",
        )
    expires_at = _epoch_claim(claims, "exp", required=True)
    assert expires_at is not None
    if expires_at <= now:
        raise InvalidAuthToken(
            TokenProblem.expired,
            f"The token expired on {expires_at:%Y-%m-%d %H:%M} UTC. Generate a new one.",
        )
    not_before = _epoch_claim(claims, "nbf", required=False)
    if not_before is not None and not_before > now + timedelta(minutes=5):
        raise InvalidAuthToken(
            TokenProblem.not_yet_valid,
            f"The token is not valid before {not_before:%Y-%m-%d %H:%M} UTC.",
        )
    user_id = claims.get("user_id")
    return DecodedAuthToken(
        room_id=room_id,
        role=role,
        user_id=str(user_id) if isinstance(user_id, str | int) else None,
        access_key=key,
        issued_at=_epoch_claim(claims, "iat", required=False),
        expires_at=expires_at,
        signature_verified=False,
    )


def _non_empty_string(claims: dict[str, Any], name: str, problem: TokenProblem, label: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidAuthToken(problem, f"The token has no valid {label} claim.")
    return value


def _epoch_claim(claims: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAuthToken(
            TokenProblem.expiry, f"The token's {name} claim must be a time in epoch seconds."
        )
    try:
        return from_epoch(value)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidAuthToken(
            TokenProblem.expiry, f"The token's {name} claim is not a real time."
        ) from exc


def _verify_signature(token: str, app_secret: str) -> None:
    try:
        jwt.decode(
            token,
            app_secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise InvalidAuthToken(
            TokenProblem.signature,
            "The token's signature does not match LIVESTAGE_HMS_APP_SECRET: it was signed by "
            "another app or altered.",
        ) from exc
    except jwt.PyJWTError as exc:
        raise InvalidAuthToken(TokenProblem.signature, "The token could not be verified.") from exc
