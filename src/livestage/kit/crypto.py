"""Encryption at rest for secrets we must read back (100ms auth tokens, TOTP seeds).

Fernet (AES-128-CBC + HMAC-SHA256) keyed from LIVESTAGE_SECRET_KEY through HKDF. Several keys
may be configured: the first encrypts, all decrypt, so a key can be rotated with
`livestage rotate-keys` while old rows stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    pass


def _derive(secret: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"livestage", info=purpose)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


class SecretBox:
    def __init__(self, keys: Sequence[str], *, purpose: bytes = b"at-rest-v1") -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._fernet = MultiFernet([Fernet(_derive(k, purpose)) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("ciphertext was not made with any configured key") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the primary key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_token_of(session_token: str) -> str:
    """A signed-in session's CSRF token, derived from the session cookie's token: never stored
    (the database holds neither it nor the session token), and it reveals neither."""
    return hashlib.sha256(f"livestage-csrf:{session_token}".encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
