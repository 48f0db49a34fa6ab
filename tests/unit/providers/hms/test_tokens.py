from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestage.providers.hms.tokens import (
    CLOCK_SKEW,
    ManagementTokenExpired,
    ManagementTokenSource,
    StaticManagementToken,
    TokenBuildError,
    mint_auth_token,
    mint_expiring_auth_token,
    mint_management_token,
    random_uuid4,
    token_expiry,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def access_key() -> str:
    return secrets.token_hex(12)


@pytest.fixture
def app_secret() -> str:
    return secrets.token_hex(16)


def decode(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    return claims


def epoch(value: datetime) -> int:
    return int(value.timestamp())


class TestMintAuthToken:
    def _mint(self, key: str, secret: str, /, **overrides: Any) -> str:
        kwargs: dict[str, Any] = {
            "access_key": key,
            "app_secret": secret,
            "room_id": "6324661c4da877930beaecaa",
            "role": "broadcaster",
            "user_id": "influencer-42",
            "ttl": timedelta(hours=4),
            "now": NOW,
        }
        return mint_auth_token(**(kwargs | overrides))

    def test_claims_are_exactly_the_documented_ones(self, access_key: str, app_secret: str) -> None:
        jti = str(uuid.uuid4())
        token = self._mint(access_key, app_secret, jti=jti)

        issued = epoch(NOW - CLOCK_SKEW)
        assert decode(token, app_secret) == {
            "access_key": access_key,
            "type": "app",
            "version": 2,
            "room_id": "6324661c4da877930beaecaa",
            "role": "broadcaster",
            "user_id": "influencer-42",
            "jti": jti,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 4 * 3600,
        }

    def test_header_is_hs256_jwt(self, access_key: str, app_secret: str) -> None:
        token = self._mint(access_key, app_secret)

        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}

    def test_jti_is_a_fresh_uuid4(self, access_key: str, app_secret: str) -> None:
        first = decode(self._mint(access_key, app_secret), app_secret)["jti"]
        second = decode(self._mint(access_key, app_secret), app_secret)["jti"]

        assert uuid.UUID(first).version == 4
        assert first != second

    def test_signed_with_the_app_secret(self, access_key: str, app_secret: str) -> None:
        token = self._mint(access_key, app_secret)

        with pytest.raises(jwt.InvalidSignatureError):
            decode(token, secrets.token_hex(16))

    def test_ninety_days_is_allowed(self, access_key: str, app_secret: str) -> None:
        token = self._mint(access_key, app_secret, ttl=timedelta(days=90))

        claims = decode(token, app_secret)
        assert claims["exp"] - claims["nbf"] == 90 * 86400

    @pytest.mark.parametrize("field", ["access_key", "app_secret", "room_id", "role", "user_id"])
    @pytest.mark.parametrize("value", ["", "   "])
    def test_rejects_empty_input(
        self, access_key: str, app_secret: str, field: str, value: str
    ) -> None:
        with pytest.raises(TokenBuildError, match=f"{field} must not be empty"):
            self._mint(access_key, app_secret, **{field: value})

    @pytest.mark.parametrize(
        ("ttl", "match"),
        [
            (timedelta(0), "at least one second"),
            (timedelta(seconds=-5), "at least one second"),
            (timedelta(milliseconds=500), "at least one second"),
            (timedelta(days=90, seconds=1), "at most 90 days"),
        ],
    )
    def test_rejects_bad_ttl(
        self, access_key: str, app_secret: str, ttl: timedelta, match: str
    ) -> None:
        with pytest.raises(TokenBuildError, match=match):
            self._mint(access_key, app_secret, ttl=ttl)

    def test_rejects_naive_now(self, access_key: str, app_secret: str) -> None:
        with pytest.raises(TokenBuildError, match="timezone-aware"):
            self._mint(access_key, app_secret, now=NOW.replace(tzinfo=None))

    def test_build_error_is_a_value_error(self) -> None:
        assert issubclass(TokenBuildError, ValueError)

    @pytest.mark.parametrize("ttl", [timedelta(seconds=1), timedelta(hours=4), timedelta(days=3)])
    def test_the_expiry_is_known_without_decoding(
        self, access_key: str, app_secret: str, ttl: timedelta
    ) -> None:
        now = NOW + timedelta(microseconds=654_321)
        token = mint_auth_token(
            access_key=access_key,
            app_secret=app_secret,
            room_id="r",
            role="viewer",
            user_id="u",
            ttl=ttl,
            now=now,
        )
        claims = jwt.decode(token, app_secret, algorithms=["HS256"], options={"verify_exp": False})
        assert token_expiry(ttl=ttl, now=now) == datetime.fromtimestamp(claims["exp"], UTC)

    @pytest.mark.parametrize("ttl", [timedelta(seconds=1), timedelta(hours=4), timedelta(days=3)])
    def test_the_expiring_mint_is_the_same_token_and_its_exp(
        self, access_key: str, app_secret: str, ttl: timedelta
    ) -> None:
        now = NOW + timedelta(microseconds=654_321)
        inputs: dict[str, Any] = {
            "access_key": access_key,
            "app_secret": app_secret,
            "room_id": "r",
            "role": "viewer",
            "user_id": "u",
            "ttl": ttl,
            "now": now,
            "jti": "one-jti",
        }
        token, expires = mint_expiring_auth_token(**inputs)
        expires_at = datetime.fromtimestamp(expires, UTC)
        assert token == mint_auth_token(**inputs)
        claims = jwt.decode(token, app_secret, algorithms=["HS256"], options={"verify_exp": False})
        assert expires_at == datetime.fromtimestamp(claims["exp"], UTC)
        assert expires_at == token_expiry(ttl=ttl, now=now)


text = st.text(min_size=1).filter(str.strip)


@given(
    access_key=text,
    room_id=text,
    role=text,
    user_id=text,
    jti=text,
    seconds=st.integers(-(2**31), 2**31),
    ttl=st.integers(1, 90 * 86_400),
)
def test_the_auth_token_is_the_one_pyjwt_makes_of_its_claims(
    access_key: str, room_id: str, role: str, user_id: str, jti: str, seconds: int, ttl: int
) -> None:
    """Byte for byte, whatever the strings hold (quotes, escapes, any character)."""
    secret, now = secrets.token_hex(16), NOW + timedelta(seconds=seconds)
    token, _ = mint_expiring_auth_token(
        access_key=access_key,
        app_secret=secret,
        room_id=room_id,
        role=role,
        user_id=user_id,
        ttl=timedelta(seconds=ttl),
        now=now,
        jti=jti,
    )
    issued = epoch(now - CLOCK_SKEW)
    claims = {
        "access_key": access_key,
        "type": "app",
        "version": 2,
        "room_id": room_id,
        "role": role,
        "user_id": user_id,
        "jti": jti,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
    }
    assert token == jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def test_a_random_uuid4_is_what_uuid4_makes() -> None:
    made = [random_uuid4() for _ in range(2_000)]
    for value in made:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(made)) == len(made)
    # Every bit uuid4 leaves random is random: each hex digit takes all its values.
    for position in range(36):
        digits = {value[position] for value in made}
        if position in (8, 13, 18, 23):
            assert digits == {"-"}
        elif position == 14:
            assert digits == {"4"}
        elif position == 19:
            assert digits == set("89ab")
        else:
            assert digits == set("0123456789abcdef")


class TestMintManagementToken:
    def test_claims_have_no_room_role_or_user(self, access_key: str, app_secret: str) -> None:
        jti = str(uuid.uuid4())
        token = mint_management_token(
            access_key=access_key, app_secret=app_secret, ttl=timedelta(hours=1), now=NOW, jti=jti
        )

        issued = epoch(NOW - CLOCK_SKEW)
        assert decode(token, app_secret) == {
            "access_key": access_key,
            "type": "management",
            "version": 2,
            "jti": jti,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
        }

    def test_rejects_empty_secret(self, access_key: str) -> None:
        with pytest.raises(TokenBuildError, match="app_secret"):
            mint_management_token(
                access_key=access_key, app_secret="", ttl=timedelta(hours=1), now=NOW
            )


class TestManagementTokenSource:
    def _source(
        self, access_key: str, app_secret: str, clock: FakeClock, ttl: timedelta
    ) -> ManagementTokenSource:
        return ManagementTokenSource(
            access_key=access_key, app_secret=app_secret, ttl=ttl, clock=clock
        )

    @pytest.mark.asyncio
    async def test_mints_a_management_token_on_first_use(
        self, access_key: str, app_secret: str
    ) -> None:
        source = self._source(access_key, app_secret, FakeClock(), timedelta(hours=1))
        assert source.expires_at is None

        claims = decode(await source.get(), app_secret)

        assert claims["type"] == "management"
        assert source.expires_at == NOW - CLOCK_SKEW + timedelta(hours=1)
        assert source.renewable

    @pytest.mark.asyncio
    async def test_reuses_the_token_until_the_refresh_margin(
        self, access_key: str, app_secret: str
    ) -> None:
        clock = FakeClock()
        source = self._source(access_key, app_secret, clock, timedelta(hours=1))
        first = await source.get()
        refresh_at = NOW - CLOCK_SKEW + timedelta(hours=1) - timedelta(minutes=5)

        clock.now = refresh_at - timedelta(seconds=1)
        assert await source.get() == first

        clock.now = refresh_at
        second = await source.get()
        assert second != first
        assert source.expires_at == refresh_at - CLOCK_SKEW + timedelta(hours=1)

    @pytest.mark.asyncio
    async def test_margin_is_clamped_to_half_a_short_ttl(
        self, access_key: str, app_secret: str
    ) -> None:
        clock = FakeClock()
        source = self._source(access_key, app_secret, clock, timedelta(minutes=2))
        first = await source.get()
        assert source.refresh_margin == timedelta(minutes=1)

        clock.advance(timedelta(seconds=49))
        assert await source.get() == first
        clock.advance(timedelta(seconds=1))
        assert await source.get() != first

    @pytest.mark.asyncio
    async def test_force_new_always_re_mints(self, access_key: str, app_secret: str) -> None:
        source = self._source(access_key, app_secret, FakeClock(), timedelta(hours=1))
        first = await source.get()

        fresh = await source.force_new()

        assert fresh != first
        assert await source.get() == fresh

    @pytest.mark.asyncio
    async def test_force_new_keeps_a_token_another_task_already_replaced(
        self, access_key: str, app_secret: str
    ) -> None:
        source = self._source(access_key, app_secret, FakeClock(), timedelta(hours=1))
        rejected = await source.get()
        replacement = await source.force_new(rejected=rejected)

        assert await source.force_new(rejected=rejected) == replacement

    @pytest.mark.asyncio
    async def test_concurrent_callers_share_one_token(
        self, access_key: str, app_secret: str
    ) -> None:
        source = self._source(access_key, app_secret, FakeClock(), timedelta(hours=1))

        tokens = await asyncio.gather(*(source.get() for _ in range(10)))

        assert len(set(tokens)) == 1

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"access_key": ""}, "access_key"),
            ({"app_secret": ""}, "app_secret"),
            ({"ttl": timedelta(0)}, "at least one second"),
            ({"ttl": timedelta(days=91)}, "at most 90 days"),
        ],
    )
    def test_rejects_bad_configuration(
        self, access_key: str, app_secret: str, kwargs: dict[str, Any], match: str
    ) -> None:
        base: dict[str, Any] = {
            "access_key": access_key,
            "app_secret": app_secret,
            "ttl": timedelta(hours=1),
        }
        with pytest.raises(TokenBuildError, match=match):
            ManagementTokenSource(**(base | kwargs))


class TestStaticManagementToken:
    def _dashboard_token(self, access_key: str, app_secret: str) -> str:
        return mint_management_token(
            access_key=access_key, app_secret=app_secret, ttl=timedelta(days=7), now=NOW
        )

    @pytest.mark.asyncio
    async def test_hands_back_the_configured_token(self, access_key: str, app_secret: str) -> None:
        token = self._dashboard_token(access_key, app_secret)
        source = StaticManagementToken(token, clock=FakeClock())

        assert await source.get() == token
        assert await source.force_new(rejected=token) == token
        assert not source.renewable

    def test_reads_the_expiry_without_the_secret(self, access_key: str, app_secret: str) -> None:
        source = StaticManagementToken(self._dashboard_token(access_key, app_secret))

        assert source.expires_at == NOW - CLOCK_SKEW + timedelta(days=7)

    def test_expiring_soon(self, access_key: str, app_secret: str) -> None:
        source = StaticManagementToken(self._dashboard_token(access_key, app_secret))
        expires_at = NOW - CLOCK_SKEW + timedelta(days=7)

        assert not source.expiring_soon(expires_at - timedelta(days=4))
        assert source.expiring_soon(expires_at - timedelta(days=3))
        assert source.expiring_soon(expires_at - timedelta(hours=1), within=timedelta(hours=2))

    @pytest.mark.asyncio
    async def test_expired_token_raises_an_actionable_error(
        self, access_key: str, app_secret: str
    ) -> None:
        token = self._dashboard_token(access_key, app_secret)
        clock = FakeClock(NOW + timedelta(days=8))
        source = StaticManagementToken(token, clock=clock)

        with pytest.raises(ManagementTokenExpired) as raised:
            await source.get()

        message = str(raised.value)
        assert message == (
            "the configured LIVESTAGE_HMS_MANAGEMENT_TOKEN expired at 2026-11-28T11:59:50.000Z; "
            "mint a new one in the 100ms dashboard or configure LIVESTAGE_HMS_APP_SECRET"
        )
        assert token not in message
        assert app_secret not in message

    def test_rejects_a_value_that_is_not_a_jwt(self) -> None:
        with pytest.raises(TokenBuildError, match="LIVESTAGE_HMS_MANAGEMENT_TOKEN is not"):
            StaticManagementToken("not-a-token")
