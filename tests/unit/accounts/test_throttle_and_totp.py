from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp

from livestage.accounts import totp
from livestage.accounts.throttle import ThrottlePolicy, after_failure, locked_for

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10))


class TestThrottle:
    def test_locks_after_max_failures_within_the_window(self) -> None:
        state = None
        for minute in range(3):
            state = after_failure(state, POLICY, NOW + timedelta(minutes=minute))
        assert state is not None
        assert locked_for(state, NOW + timedelta(minutes=2)) == timedelta(minutes=10)
        assert locked_for(state, NOW + timedelta(minutes=12, seconds=1)) is None

    def test_failures_spread_beyond_the_window_do_not_lock(self) -> None:
        state = None
        for minute in (0, 20, 40, 60):
            state = after_failure(state, POLICY, NOW + timedelta(minutes=minute))
            assert state.locked_until is None
        assert state is not None and state.failures == 1


class TestTotp:
    def test_current_code_matches_once(self) -> None:
        secret = totp.new_secret()
        code = pyotp.TOTP(secret).at(NOW)
        step = totp.matching_step(secret, code, NOW, last_step=None)
        assert step is not None
        assert totp.matching_step(secret, code, NOW, last_step=step) is None

    def test_previous_window_is_tolerated_for_clock_drift(self) -> None:
        secret = totp.new_secret()
        code = pyotp.TOTP(secret).at(NOW - timedelta(seconds=30))
        assert totp.matching_step(secret, code, NOW, last_step=None) is not None
        old = pyotp.TOTP(secret).at(NOW - timedelta(minutes=5))
        assert totp.matching_step(secret, old, NOW, last_step=None) is None

    def test_garbage_codes_are_refused(self) -> None:
        secret = totp.new_secret()
        for code in ("", "12345", "abcdef", "1234567"):
            assert totp.matching_step(secret, code, NOW, last_step=None) is None

    def test_provisioning_uri_names_issuer_and_account(self) -> None:
        uri = totp.provisioning_uri(totp.new_secret(), "root@example.com")
        assert uri.startswith("otpauth://totp/livestage:root%40example.com?")
        assert "issuer=livestage" in uri
