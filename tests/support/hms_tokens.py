"""Throwaway 100ms-shaped tokens minted at test time (never committed)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt


def throwaway_credentials() -> tuple[str, str]:
    return secrets.token_hex(12), secrets.token_hex(32)


def room_id() -> str:
    return secrets.token_hex(12)


def auth_token(
    *,
    access_key: str,
    secret: str,
    now: datetime,
    room: str | None = None,
    role: str = "broadcaster",
    ttl: timedelta = timedelta(days=7),
    **overrides: Any,
) -> str:
    issued = int(now.timestamp()) - 10
    claims: dict[str, Any] = {
        "access_key": access_key,
        "type": "app",
        "version": 2,
        "room_id": room or room_id(),
        "role": role,
        "user_id": "user-1",
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")
