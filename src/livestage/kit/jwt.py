"""HS256 JSON Web Tokens, made with PyJWT: its JWS writes the header, its HMAC algorithm
checks each key."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_encode

MAX_KEYS = 32

# `json.dumps` with any non-default argument builds a new encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class Signer:
    """One key's tokens. PyJWS's `encode` checks the key (that it is not PEM, SSH, DER or a
    JWK: several parse attempts) and merges, validates and dumps the same header for every
    token; on the viewer join that was more than half of the mint (bench/results/NOTES.md).
    Both depend only on the key, so PyJWS does them once, here, and each token is the header
    PyJWS wrote, the payload and the HMAC-SHA256 signature PyJWT's algorithm makes, exactly
    as PyJWS joins them. The key's HMAC state is kept and copied for each token (the key's
    two hash blocks are not hashed again)."""

    def __init__(self, key: str) -> None:
        jws = PyJWS(algorithms=["HS256"])
        self._header = jws.encode(b"", key, algorithm="HS256").partition(".")[0].encode()
        prepared = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
        self._keyed = hmac.new(prepared, digestmod=hashlib.sha256)

    def sign(self, payload: bytes) -> str:
        signing_input = b".".join((self._header, base64url_encode(payload)))
        mac = self._keyed.copy()
        mac.update(signing_input)
        return b".".join((signing_input, base64url_encode(mac.digest()))).decode()


_signers: dict[str, Signer] = {}


def hs256_signer(key: str) -> Signer:
    """The signer of `key`'s tokens (kept for the next `MAX_KEYS` keys asked)."""
    signer = _signers.get(key)
    if signer is None:
        signer = Signer(key)
        if len(_signers) >= MAX_KEYS:
            _signers.clear()
        _signers[key] = signer
    return signer


def encode_hs256(claims: dict[str, Any], key: str) -> str:
    """The token `jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})` makes,
    for claims that are already JSON values (times as integers)."""
    return hs256_signer(key).sign(_COMPACT.encode(claims).encode())
