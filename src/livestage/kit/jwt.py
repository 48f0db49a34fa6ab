"""HS256 JSON Web Tokens, made with PyJWT: its JWS writes the header, its HMAC algorithm
checks each key and signs."""

from __future__ import annotations

import json
from typing import Any

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_encode

MAX_KEYS = 32

# `json.dumps` with any non-default argument builds a new encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class _Signer:
    """One key's tokens. PyJWS's `encode` checks the key (that it is not PEM, SSH, DER or a
    JWK: several parse attempts) and merges, validates and dumps the same header for every
    token; on the viewer join that was more than half of the mint (bench/results/NOTES.md).
    Both depend only on the key, so PyJWS does them once, here, and each token is the header
    PyJWS wrote, the payload and PyJWT's HMAC signature, exactly as PyJWS joins them."""

    def __init__(self, key: str) -> None:
        jws = PyJWS(algorithms=["HS256"])
        self._header = jws.encode(b"", key, algorithm="HS256").partition(".")[0].encode()
        self._algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
        self._key = self._algorithm.prepare_key(key)

    def encode(self, claims: dict[str, Any]) -> str:
        signing_input = b".".join(
            (self._header, base64url_encode(_COMPACT.encode(claims).encode()))
        )
        signature = base64url_encode(self._algorithm.sign(signing_input, self._key))
        return b".".join((signing_input, signature)).decode()


_signers: dict[str, _Signer] = {}


def encode_hs256(claims: dict[str, Any], key: str) -> str:
    """The token `jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})` makes,
    for claims that are already JSON values (times as integers)."""
    signer = _signers.get(key)
    if signer is None:
        signer = _Signer(key)
        if len(_signers) >= MAX_KEYS:
            _signers.clear()
        _signers[key] = signer
    return signer.encode(claims)
