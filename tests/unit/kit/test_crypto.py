"""Tokens derived, never stored: a session's CSRF token comes from its cookie's token."""

from __future__ import annotations

import secrets

from livestage.kit.crypto import csrf_token_of, sha256_hex


def test_a_sessions_csrf_token_is_stable_distinct_and_not_its_stored_hash() -> None:
    first, second = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert csrf_token_of(first) == csrf_token_of(first)
    assert csrf_token_of(first) != csrf_token_of(second)
    # What the database keeps (the cookie's SHA-256) is not the CSRF token, nor gives it.
    assert csrf_token_of(first) != sha256_hex(first)
    assert first not in csrf_token_of(first)
