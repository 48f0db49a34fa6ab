"""Signed values: what a browser keeps and may read, but must not forge (the anonymous viewer
cookie). `value.mac`, the MAC an HMAC-SHA256 over the value, base64url without padding.

Keys are derived from LIVESTAGE_SECRET_KEY per purpose, so a value signed for one use never
verifies for another. As for `SecretBox`, the first key signs and every key verifies: rotating
the secret key keeps the values signed before it valid while the old key is a fallback.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Sequence

# A signed cookie is far shorter; anything longer is not ours and is not worth a MAC.
MAX_SIGNED_LENGTH = 512


def derive_key(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


@functools.lru_cache(maxsize=32)
def _keyed(key: bytes) -> hmac.HMAC:
    """The key's HMAC state, copied for each value: its two hash blocks are hashed once."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(value: str, key: bytes) -> str:
    mac = _keyed(key).copy()
    mac.update(value.encode())
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def sign(value: str, key: bytes) -> str:
    return f"{value}.{_mac(value, key)}"


def unsign(signed: str, keys: Sequence[bytes]) -> str | None:
    """The value when one of `keys` signed it, else None (forged, altered or malformed)."""
    if len(signed) > MAX_SIGNED_LENGTH or not signed.isascii():
        return None
    value, dot, mac = signed.rpartition(".")
    if not dot or not value:
        return None
    # Every key is tried, even after a match: the time taken does not tell which key signed.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(mac.encode(), _mac(value, key).encode())
    return value if matched else None
