"""HS256 JSON Web Tokens signed through PyJWT's JWS, each HMAC key checked once."""

from __future__ import annotations

import json
from typing import Any

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS

MAX_KEYS = 32


class _KeyCheckedOnce(HMACAlgorithm):
    """PyJWT checks an HMAC key on every signature (that it is not PEM, SSH, DER or a JWK:
    several parse attempts), which cost more than the signature itself on the viewer join
    (bench/results/NOTES.md). The answer depends only on the key, so it is kept, for the few
    keys a process signs with."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) >= MAX_KEYS:
                self._prepared.clear()
            self._prepared[key] = prepared
        return prepared


_jws = PyJWS(algorithms=["HS256"])
_jws.unregister_algorithm("HS256")
_jws.register_algorithm("HS256", _KeyCheckedOnce())


def encode_hs256(claims: dict[str, Any], key: str) -> str:
    """The token `jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})` makes,
    for claims that are already JSON values (times as integers)."""
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return _jws.encode(payload, key, algorithm="HS256", headers={"typ": "JWT"})
