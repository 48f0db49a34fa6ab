from __future__ import annotations

import secrets
import time

import jwt
import pytest
from jwt.exceptions import InvalidKeyError

from livestage.kit.jwt import encode_hs256


def claims() -> dict[str, object]:
    now = int(time.time())
    return {"room_id": "r1", "role": "viewer", "iat": now, "exp": now + 60, "version": 2}


def test_the_same_token_as_pyjwt_makes() -> None:
    key = secrets.token_hex(32)
    payload = claims()
    token = encode_hs256(payload, key)
    assert token == jwt.encode(payload, key, algorithm="HS256", headers={"typ": "JWT"})
    assert jwt.decode(token, key, algorithms=["HS256"]) == payload


def test_every_key_signs_with_itself() -> None:
    first, second = secrets.token_hex(32), secrets.token_hex(32)
    for _ in range(2):
        assert jwt.decode(encode_hs256(claims(), first), first, algorithms=["HS256"])
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(encode_hs256(claims(), second), first, algorithms=["HS256"])


def test_an_asymmetric_key_is_still_refused() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----\n"
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            encode_hs256(claims(), pem)
