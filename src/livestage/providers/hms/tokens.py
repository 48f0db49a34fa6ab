"""100ms tokens, minted locally: pure functions of their inputs and an injected clock.

Two HS256 JWTs signed with the app secret: the *auth token* (`type: app`) that lets one user
join one room with one role, and the *management token* (`type: management`) our backend sends
to the REST API. Token sources cache the management token for `HmsClient`.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol

import jwt

from livestage.kit.jwt import encode_hs256, hs256_signer
from livestage.kit.time import Clock, from_epoch, rfc3339, utc_now

# 100ms rejects a token whose `nbf` is in its future; the Node SDK back-dates by the same amount.
CLOCK_SKEW = timedelta(seconds=10)
MAX_TTL = timedelta(days=90)
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
ALGORITHM = "HS256"


class TokenBuildError(ValueError):
    """The inputs cannot make a valid token; the message names the offending input."""


class ManagementTokenExpired(TokenBuildError):
    pass


def mint_auth_token(
    *,
    access_key: str,
    app_secret: str,
    room_id: str,
    role: str,
    user_id: str,
    ttl: timedelta,
    now: datetime,
    jti: str | None = None,
) -> str:
    """An auth token letting `user_id` join `room_id` as `role` for `ttl`."""
    token, _ = mint_expiring_auth_token(
        access_key=access_key,
        app_secret=app_secret,
        room_id=room_id,
        role=role,
        user_id=user_id,
        ttl=ttl,
        now=now,
        jti=jti,
    )
    return token


def mint_expiring_auth_token(
    *,
    access_key: str,
    app_secret: str,
    room_id: str,
    role: str,
    user_id: str,
    ttl: timedelta,
    now: datetime,
    jti: str | None = None,
) -> tuple[str, int]:
    """`mint_auth_token`'s token and its `exp` (seconds since the epoch), taken from the
    claims it signed (no second reckoning of the times, no decoding)."""
    minter = AuthTokenMinter(access_key=access_key, app_secret=app_secret, ttl=ttl)
    return minter.mint(room_id=room_id, role=role, user_id=user_id, now=now, jti=jti)


class AuthTokenMinter:
    """Auth tokens of one app (access key, app secret) and one lifetime: what never changes
    between tokens is checked and written once (the viewer join mints one per viewer)."""

    def __init__(self, *, access_key: str, app_secret: str, ttl: timedelta) -> None:
        _require(access_key=access_key, app_secret=app_secret)
        self.seconds = _ttl_seconds(ttl)
        # Formatted again for each token: a "%" in the key is written as "%%".
        key = encode_basestring_ascii(access_key).replace("%", "%%")
        self._claims = '{"access_key":' + key + _AUTH_CLAIMS_AFTER_KEY
        self._signer = hs256_signer(app_secret)

    def mint(
        self, *, room_id: str, role: str, user_id: str, now: datetime, jti: str | None = None
    ) -> tuple[str, int]:
        """The token and its `exp`."""
        if not (room_id.strip() and role.strip() and user_id.strip()):
            _require(room_id=room_id, role=role, user_id=user_id)
        issued_at = _issued_at(now)
        expires = issued_at + self.seconds
        claimed = map(encode_basestring_ascii, (room_id, role, user_id, jti or random_uuid4()))
        payload = self._claims % (*claimed, issued_at, issued_at, expires)
        return self._signer.sign(payload.encode()), expires


# An auth token's claims in the documented order (as `_mint` orders a management token's) and
# as `json.dumps(claims, separators=(",", ":"))` writes them: each string through json's own
# escaper, the times as integers (the access key written once by `AuthTokenMinter`). A
# dictionary and the encoder were a third of the mint.
_AUTH_CLAIMS_AFTER_KEY = (
    ',"type":"app","version":2,"room_id":%s,"role":%s,"user_id":%s,'
    '"jti":%s,"iat":%d,"nbf":%d,"exp":%d}'
)


def random_uuid4() -> str:
    """What `str(uuid.uuid4())` returns (122 random bits, version 4, RFC 4122 variant), for a
    third of its cost."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def mint_management_token(
    *,
    access_key: str,
    app_secret: str,
    ttl: timedelta,
    now: datetime,
    jti: str | None = None,
) -> str:
    return _mint("management", access_key, app_secret, ttl, now, jti, {})[0]


def _mint(
    token_type: str,
    access_key: str,
    app_secret: str,
    ttl: timedelta,
    now: datetime,
    jti: str | None,
    extra: dict[str, str],
) -> tuple[str, int]:
    """The token and its `exp`."""
    _require(access_key=access_key, app_secret=app_secret)
    seconds = _ttl_seconds(ttl)
    issued_at = _issued_at(now)
    claims: dict[str, Any] = {
        "access_key": access_key,
        "type": token_type,
        "version": 2,
        **extra,
        "jti": jti or random_uuid4(),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + seconds,
    }
    return encode_hs256(claims, app_secret), claims["exp"]


def token_expiry(*, ttl: timedelta, now: datetime) -> datetime:
    """The `exp` of a token minted at `now` for `ttl`, without decoding the token."""
    return from_epoch(_issued_at(now) + _ttl_seconds(ttl))


def _issued_at(now: datetime) -> int:
    if now.tzinfo is None:
        raise TokenBuildError("now must be timezone-aware")
    return int((now - CLOCK_SKEW).timestamp())


def _require(**values: str) -> None:
    for name, value in values.items():
        if not value or not value.strip():
            raise TokenBuildError(f"{name} must not be empty")


def _ttl_seconds(ttl: timedelta) -> int:
    seconds = int(ttl.total_seconds())
    if seconds <= 0:
        raise TokenBuildError(f"ttl must be at least one second, got {ttl}")
    if ttl > MAX_TTL:
        raise TokenBuildError(f"ttl must be at most {MAX_TTL.days} days, got {ttl}")
    return seconds


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without checking its signature (for reading `exp`, `room_id`)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise TokenBuildError(f"not a readable JWT ({type(exc).__name__})") from None
    return claims


def expiry_of(token: str) -> datetime | None:
    exp = unverified_claims(token).get("exp")
    return from_epoch(exp) if isinstance(exp, int | float) else None


class TokenSource(Protocol):
    """Where `HmsClient` gets the management token for each request."""

    @property
    def renewable(self) -> bool:
        """Whether `force_new` can produce a different token (false for a dashboard token)."""
        ...

    @property
    def expires_at(self) -> datetime | None: ...

    async def get(self) -> str: ...

    async def force_new(self, rejected: str | None = None) -> str: ...


class ManagementTokenSource:
    """Mints management tokens and caches one, re-minting `refresh_margin` before it expires.

    The Node SDK only re-mints after expiry and leans on the 401 retry; we refresh early so
    requests never go out with a token about to lapse.
    """

    renewable = True

    def __init__(
        self,
        *,
        access_key: str,
        app_secret: str,
        ttl: timedelta,
        clock: Clock = utc_now,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        _require(access_key=access_key, app_secret=app_secret)
        _ttl_seconds(ttl)
        self._access_key = access_key
        self._app_secret = app_secret
        self._ttl = ttl
        self._clock = clock
        self.refresh_margin = min(refresh_margin, ttl / 2)
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    @property
    def expires_at(self) -> datetime | None:
        return self._expires_at

    def _fresh(self, now: datetime) -> bool:
        return self._expires_at is not None and now < self._expires_at - self.refresh_margin

    async def get(self) -> str:
        if self._token is not None and self._fresh(self._clock()):
            return self._token
        async with self._lock:
            if self._token is not None and self._fresh(self._clock()):
                return self._token
            return self._mint()

    async def force_new(self, rejected: str | None = None) -> str:
        """Re-mint; when `rejected` is given and another task already replaced it, reuse that."""
        async with self._lock:
            if self._token is not None and rejected is not None and self._token != rejected:
                return self._token
            return self._mint()

    def _mint(self) -> str:
        now = self._clock()
        token = mint_management_token(
            access_key=self._access_key, app_secret=self._app_secret, ttl=self._ttl, now=now
        )
        self._token, self._expires_at = token, expiry_of(token)
        return token


class StaticManagementToken:
    """A management token pasted from the 100ms dashboard: valid 7 to 14 days, never re-minted."""

    renewable = False

    def __init__(self, token: str, *, clock: Clock = utc_now) -> None:
        _require(management_token=token)
        try:
            self._expires_at = expiry_of(token)
        except TokenBuildError as exc:
            raise TokenBuildError(f"LIVESTAGE_HMS_MANAGEMENT_TOKEN is {exc}") from None
        self._token = token
        self._clock = clock

    @property
    def expires_at(self) -> datetime | None:
        return self._expires_at

    def expired(self, now: datetime) -> bool:
        return self._expires_at is not None and now >= self._expires_at

    def expiring_soon(self, now: datetime, *, within: timedelta = timedelta(days=3)) -> bool:
        return self._expires_at is not None and now >= self._expires_at - within

    async def get(self) -> str:
        if self._expires_at is not None and self.expired(self._clock()):
            raise ManagementTokenExpired(
                f"the configured LIVESTAGE_HMS_MANAGEMENT_TOKEN expired at "
                f"{rfc3339(self._expires_at)}; mint a new one in the 100ms dashboard or "
                "configure LIVESTAGE_HMS_APP_SECRET"
            )
        return self._token

    async def force_new(self, rejected: str | None = None) -> str:
        """Nothing to re-mint: hands back the configured token (or raises if it expired)."""
        return await self.get()
