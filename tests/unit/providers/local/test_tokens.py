"""Local join tokens: 100ms auth-token claims, signed with a key derived from the secret key."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from livestage.providers.local.tokens import (
    ACCESS_KEY,
    TokenRefused,
    derive_signing_key,
    mint_join_token,
    verify_join_token,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOM = "a" * 24
ROLES = frozenset({"broadcaster", "viewer"})
TTL = timedelta(hours=4)
UNCHECKED_TIMES = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def key(secret_key: str) -> str:
    return derive_signing_key(secret_key)


def _mint(key: str, *, room_id: str = ROOM, role: str = "viewer", now: datetime = NOW) -> str:
    return mint_join_token(
        signing_key=key, room_id=room_id, role=role, user_id="viewer-1", ttl=TTL, now=now
    )


def _verify(token: str, key: str, *, now: datetime = NOW, room_id: str = ROOM) -> object:
    return verify_join_token(token, signing_keys=(key,), room_id=room_id, roles=ROLES, now=now)


class TestDerivedKey:
    def test_is_deterministic_and_never_the_raw_key(self, secret_key: str) -> None:
        key = derive_signing_key(secret_key)
        assert key == derive_signing_key(secret_key)
        assert secret_key not in key
        assert len(bytes.fromhex(key)) == 32
        assert key != derive_signing_key(secret_key + "x")

    def test_an_empty_secret_is_refused(self) -> None:
        with pytest.raises(ValueError, match="secret key"):
            derive_signing_key("")


class TestMint:
    def test_has_the_claims_of_a_100ms_auth_token(self, key: str, secret_key: str) -> None:
        token = _mint(key, role="broadcaster")
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = jwt.decode(token, key, algorithms=["HS256"], options=UNCHECKED_TIMES)
        assert claims["type"] == "app"
        assert claims["version"] == 2
        assert claims["access_key"] == ACCESS_KEY == "local"
        assert (claims["room_id"], claims["role"], claims["user_id"]) == (
            ROOM,
            "broadcaster",
            "viewer-1",
        )
        assert uuid.UUID(claims["jti"]).version == 4
        issued = int(NOW.timestamp()) - 10
        assert claims["iat"] == claims["nbf"] == issued
        assert claims["exp"] == issued + int(TTL.total_seconds())
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, secret_key, algorithms=["HS256"], options=UNCHECKED_TIMES)


class TestVerify:
    def test_accepts_a_fresh_token(self, key: str) -> None:
        claims = verify_join_token(
            _mint(key), signing_keys=(key,), room_id=ROOM, roles=ROLES, now=NOW
        )
        assert (claims.room_id, claims.role, claims.user_id) == (ROOM, "viewer", "viewer-1")
        assert claims.expires_at == NOW - timedelta(seconds=10) + TTL

    def test_accepts_a_token_signed_with_a_rotated_out_key(self, key: str) -> None:
        old = derive_signing_key(secrets.token_urlsafe(32))
        claims = verify_join_token(
            _mint(old), signing_keys=(key, old), room_id=ROOM, roles=ROLES, now=NOW
        )
        assert claims.user_id == "viewer-1"

    @pytest.mark.parametrize(
        ("make", "reason"),
        [
            (lambda key: "", "missing token"),
            (lambda key: "not-a-jwt", "malformed token"),
            (lambda key: "a.b.c", "malformed token"),
            (lambda key: "x" * 5000, "token too long"),
            (lambda key: _mint(derive_signing_key("some other secret key")), "signature"),
            (lambda key: _mint(key, room_id="b" * 24), "another room"),
            (lambda key: _mint(key, role="moderator"), "role"),
            (lambda key: _mint(key, now=NOW - TTL - timedelta(seconds=30)), "expired"),
            (lambda key: _mint(key, now=NOW + timedelta(minutes=5)), "not valid yet"),
        ],
    )
    def test_refuses(self, key: str, make: object, reason: str) -> None:
        assert callable(make)
        with pytest.raises(TokenRefused, match=reason):
            _verify(make(key), key)

    def test_refuses_a_management_token_and_a_foreign_access_key(self, key: str) -> None:
        base = {"version": 2, "room_id": ROOM, "role": "viewer", "user_id": "u", "jti": "j"}
        times = {"iat": int(NOW.timestamp()), "nbf": int(NOW.timestamp())}
        times["exp"] = times["iat"] + 60
        management = jwt.encode({**base, **times, "type": "management", "access_key": "local"}, key)
        with pytest.raises(TokenRefused, match="not a join token"):
            _verify(management, key)
        foreign = jwt.encode({**base, **times, "type": "app", "access_key": "hms-key"}, key)
        with pytest.raises(TokenRefused, match="not issued by this server"):
            _verify(foreign, key)
        no_expiry = jwt.encode({**base, "type": "app", "access_key": "local"}, key)
        with pytest.raises(TokenRefused, match="no expiry"):
            _verify(no_expiry, key)

    def test_refuses_an_unsigned_token(self, key: str) -> None:
        claims = jwt.decode(_mint(key), key, algorithms=["HS256"], options=UNCHECKED_TIMES)
        unsigned = jwt.encode(claims, None, algorithm="none")
        with pytest.raises(TokenRefused, match="malformed token"):
            _verify(unsigned, key)
