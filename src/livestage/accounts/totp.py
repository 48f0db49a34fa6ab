"""TOTP (RFC 6238) second factor: the admin's "secret key"."""

from __future__ import annotations

import re
from datetime import datetime

import pyotp
import segno

ISSUER = "livestage"
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return str(pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER))


def terminal_qr(uri: str) -> str:
    import io

    buffer = io.StringIO()
    segno.make(uri, error="m").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def normalize_code(code: str) -> str:
    return re.sub(r"\s", "", code)


def matching_step(secret: str, code: str, now: datetime, *, last_step: int | None) -> int | None:
    """The time step the code belongs to (current ±1 for clock drift), or None.

    A step at or before `last_step` was already used: refusing it stops replay of a seen code.
    """
    code = normalize_code(code)
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if last_step is not None and candidate <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None


def code_at(secret: str, now: datetime) -> str:
    return str(pyotp.TOTP(secret).at(now))
