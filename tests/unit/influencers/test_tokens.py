from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livestage.influencers.tokens import (
    InvalidAuthToken,
    TokenProblem,
    TokenStatus,
    masked_preview,
    token_status,
    validate_auth_token,
)
from tests.support.hms_tokens import auth_token, throwaway_credentials

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY, SECRET = throwaway_credentials()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _reencode(token: str, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """Change the header or claims but keep the original signature: a tampered token."""
    head, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=="))
    decoded.update(claims)
    decoded = {k: v for k, v in decoded.items() if v is not None}
    new_head = _b64(json.dumps(header).encode()) if header is not None else head
    return f"{new_head}.{_b64(json.dumps(decoded).encode())}.{signature}"


def _problem(token: str, **kwargs: Any) -> TokenProblem:
    with pytest.raises(InvalidAuthToken) as caught:
        validate_auth_token(token, now=NOW, **kwargs)
    assert caught.value.message
    return caught.value.problem


class TestValidToken:
    def test_minted_token_is_accepted_and_decoded(self) -> None:
        token = auth_token(
            access_key=KEY, secret=SECRET, now=NOW, room="a" * 24, role="broadcaster"
        )
        decoded = validate_auth_token(token, now=NOW, access_key=KEY, app_secret=SECRET)
        assert decoded.room_id == "a" * 24
        assert decoded.role == "broadcaster"
        assert decoded.user_id == "user-1"
        assert decoded.signature_verified is True
        assert decoded.expires_at == datetime.fromtimestamp(
            int(NOW.timestamp()) - 10 + 7 * 86400, UTC
        )

    def test_without_secret_the_signature_is_not_claimed_verified(self) -> None:
        token = auth_token(access_key=KEY, secret=SECRET, now=NOW)
        assert validate_auth_token(token, now=NOW).signature_verified is False

    def test_surrounding_whitespace_is_ignored(self) -> None:
        token = auth_token(access_key=KEY, secret=SECRET, now=NOW)
        assert validate_auth_token(f"  {token}\n", now=NOW, app_secret=SECRET).role


class TestEachProblemHasItsOwnReason:
    @pytest.mark.parametrize(
        ("token", "problem"),
        [
            ("", TokenProblem.empty),
            ("   ", TokenProblem.empty),
            ("abc.def", TokenProblem.structure),
            ("a.b.c.d", TokenProblem.structure),
            ("eyJhbGciOiJIUzI1NiJ9..sig", TokenProblem.structure),
            ("!!!.???.***", TokenProblem.encoding),
            ("x" * 5000, TokenProblem.too_long),
        ],
    )
    def test_malformed(self, token: str, problem: TokenProblem) -> None:
        assert _problem(token) == problem

    def test_algorithm(self) -> None:
        token = jwt.encode({"type": "app"}, SECRET * 2, algorithm="HS512")
        assert _problem(token) == TokenProblem.algorithm

    def test_alg_none(self) -> None:
        good = auth_token(access_key=KEY, secret=SECRET, now=NOW)
        assert _problem(_reencode(good, header={"alg": "none"})) == TokenProblem.algorithm

    def test_management_token_is_refused_with_a_hint(self) -> None:
        token = auth_token(access_key=KEY, secret=SECRET, now=NOW, type="management")
        with pytest.raises(InvalidAuthToken, match="management token") as caught:
            validate_auth_token(token, now=NOW)
        assert caught.value.problem == TokenProblem.type

    @pytest.mark.parametrize(
        ("claims", "problem"),
        [
            ({"version": 1}, TokenProblem.version),
            ({"version": "2"}, TokenProblem.version),
            ({"room_id": None}, TokenProblem.room_id),
            ({"room_id": ""}, TokenProblem.room_id),
            ({"role": None}, TokenProblem.role),
            ({"role": 7}, TokenProblem.role),
            ({"access_key": None}, TokenProblem.access_key),
            ({"exp": None}, TokenProblem.expiry),
            ({"exp": "tomorrow"}, TokenProblem.expiry),
        ],
    )
    def test_claims(self, claims: dict[str, Any], problem: TokenProblem) -> None:
        token = auth_token(**{"access_key": KEY, **claims}, secret=SECRET, now=NOW)
        assert _problem(token, app_secret=SECRET) == problem

    def test_access_key_must_match_configuration(self) -> None:
        token = auth_token(access_key="another-app", secret=SECRET, now=NOW)
        assert _problem(token, access_key=KEY) == TokenProblem.access_key

    def test_expired(self) -> None:
        token = auth_token(access_key=KEY, secret=SECRET, now=NOW - timedelta(days=8))
        assert _problem(token, app_secret=SECRET) == TokenProblem.expired

    def test_not_yet_valid(self) -> None:
        token = auth_token(access_key=KEY, secret=SECRET, now=NOW + timedelta(days=1))
        assert _problem(token) == TokenProblem.not_yet_valid

    def test_signed_with_another_secret(self) -> None:
        token = auth_token(access_key=KEY, secret=throwaway_credentials()[1], now=NOW)
        assert _problem(token, access_key=KEY, app_secret=SECRET) == TokenProblem.signature


claim_changes = st.sampled_from(
    [
        ("room_id", st.text(min_size=1, max_size=30)),
        ("role", st.sampled_from(["viewer", "host", "admin", "Broadcaster"])),
        ("user_id", st.text(max_size=20)),
        ("exp", st.integers(min_value=int(NOW.timestamp()) + 3600, max_value=2**31)),
        ("access_key", st.text(min_size=1, max_size=30)),
        ("type", st.sampled_from(["management", "App", "", None])),
    ]
).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1]))

SIGNED = auth_token(access_key=KEY, secret=SECRET, now=NOW, room="b" * 24)


class TestHypothesis:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(st.text(max_size=300))
    def test_arbitrary_text_is_rejected_with_a_reason(self, text: str) -> None:
        with pytest.raises(InvalidAuthToken) as caught:
            validate_auth_token(text, now=NOW, access_key=KEY, app_secret=SECRET)
        assert isinstance(caught.value.problem, TokenProblem)
        assert caught.value.message

    @settings(max_examples=200)
    @given(st.lists(st.text(alphabet="ABCxyz019-_=+/.", max_size=60), min_size=1, max_size=5))
    def test_dotted_garbage_is_rejected(self, parts: list[str]) -> None:
        with pytest.raises(InvalidAuthToken):
            validate_auth_token(".".join(parts), now=NOW, app_secret=SECRET)

    @settings(max_examples=200)
    @given(claim_changes)
    def test_tampered_claims_are_rejected(self, change: tuple[str, Any]) -> None:
        name, value = change
        original = json.loads(base64.urlsafe_b64decode(SIGNED.split(".")[1] + "=="))
        if original.get(name) == value:
            return
        tampered = _reencode(SIGNED, **{name: value})
        with pytest.raises(InvalidAuthToken) as caught:
            validate_auth_token(tampered, now=NOW, access_key=KEY, app_secret=SECRET)
        assert caught.value.problem in {
            TokenProblem.signature,
            TokenProblem.type,
            TokenProblem.room_id,
            TokenProblem.access_key,
            TokenProblem.role,
        }

    @settings(max_examples=200)
    @given(st.binary(min_size=32, max_size=32))
    def test_replaced_signature_is_rejected(self, signature: bytes) -> None:
        head, payload, original = SIGNED.split(".")
        candidate = f"{head}.{payload}.{_b64(signature)}"
        if _b64(signature) == original:
            return
        with pytest.raises(InvalidAuthToken) as caught:
            validate_auth_token(candidate, now=NOW, app_secret=SECRET)
        assert caught.value.problem == TokenProblem.signature


class TestStatus:
    SOON = timedelta(hours=72)

    def test_transitions_as_the_clock_moves(self) -> None:
        expires = NOW + timedelta(hours=100)
        seen = [
            token_status(expires, now=NOW + timedelta(hours=h), soon=self.SOON)
            for h in (0, 27, 28.5, 99, 100, 101)
        ]
        assert seen == [
            TokenStatus.valid,
            TokenStatus.valid,
            TokenStatus.expiring_soon,
            TokenStatus.expiring_soon,
            TokenStatus.expired,
            TokenStatus.expired,
        ]

    def test_none_and_invalid(self) -> None:
        assert token_status(None, now=NOW, soon=self.SOON) == TokenStatus.none
        assert (
            token_status(NOW + timedelta(days=9), now=NOW, soon=self.SOON, valid=False)
            == TokenStatus.invalid
        )

    def test_a_signature_not_checked_here_is_unverified_not_valid(self) -> None:
        def status(expires: datetime) -> TokenStatus:
            return token_status(expires, now=NOW, soon=self.SOON, verified=False)

        assert status(NOW + timedelta(days=9)) == TokenStatus.unverified
        assert status(NOW + timedelta(hours=1)) == TokenStatus.unverified
        assert status(NOW - timedelta(hours=1)) == TokenStatus.expired
        invalid = token_status(NOW + timedelta(days=9), now=NOW, soon=self.SOON, valid=False)
        assert invalid == TokenStatus.invalid


def test_masked_preview_shows_only_the_ends() -> None:
    token = auth_token(access_key=KEY, secret=SECRET, now=NOW)
    preview = masked_preview(token)
    assert preview.startswith(token[:8]) and preview.endswith(token[-6:])
    assert len(preview) < 20
