from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Hashing takes 50-300 ms of CPU and 64 MiB: run on the event loop, every login stalled all of
# the process's requests (joins, chat, live pages) for that long. argon2 releases the GIL, so a
# thread of its own frees the loop; two at most bound the memory a burst of logins takes.
_hashing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown keeps the response time the same, so
    timing does not reveal which emails have accounts. Made on first use: a hash costs about
    0.1 s, which every command of the CLI paid at start when it was made at import."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matches = _hasher.verify(password_hash or _dummy_hash(), password)
        return matches and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_off_loop(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, hash_password, password)


async def verify_off_loop(password_hash: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_hashing, verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 256:
        return "Password must be at most 256 characters."
    return None
