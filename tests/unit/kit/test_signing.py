from __future__ import annotations

import secrets

from hypothesis import given
from hypothesis import strategies as st

from livestage.kit.signing import MAX_SIGNED_LENGTH, derive_key, sign, unsign


def key() -> bytes:
    return derive_key(secrets.token_urlsafe(32), b"test")


def test_a_signed_value_verifies_with_its_key() -> None:
    k = key()
    assert unsign(sign("viewer-0123456789abcdef", k), [k]) == "viewer-0123456789abcdef"


def test_every_key_verifies_and_a_stranger_does_not() -> None:
    old, new, stranger = key(), key(), key()
    signed = sign("v", old)
    assert unsign(signed, [new, old]) == "v"
    assert unsign(signed, [stranger]) is None


def test_one_secret_gives_a_different_key_per_purpose() -> None:
    secret = secrets.token_urlsafe(32)
    cookie, other = derive_key(secret, b"cookie"), derive_key(secret, b"other")
    assert unsign(sign("v", cookie), [other]) is None


def test_an_altered_value_or_mac_is_refused() -> None:
    k = key()
    value, _, mac = sign("viewer-0123456789abcdef", k).rpartition(".")
    assert unsign(f"viewer-0123456789abcdee.{mac}", [k]) is None
    assert unsign(f"{value}.{mac[:-1]}", [k]) is None
    assert unsign(f"{value}.", [k]) is None
    assert unsign(value, [k]) is None


@given(st.text(max_size=600))
def test_anything_a_browser_sends_is_refused_never_raised(raw: str) -> None:
    assert unsign(raw, [key()]) is None


def test_an_overlong_value_is_refused_before_any_mac() -> None:
    k = key()
    long_value = "v" * MAX_SIGNED_LENGTH
    assert unsign(sign(long_value, k), [k]) is None
