"""What the libraries under livestage log at DEBUG, found by running the whole journey at
LIVESTAGE_LOG_LEVEL=DEBUG (tests/browser/test_no_secrets_leak.py): aiosqlite logs every query
with its parameters, and the websockets library logs each frame, shortened, with the join
token's head and tail in it."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator

import aiosqlite
import pytest
from websockets.frames import Frame, Opcode

from livestage.logging import VERBATIM_LOGGERS, configure_logging
from tests.unit.test_logging import JWT, served

__all__ = ["served"]


@pytest.fixture
def verbatim_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in VERBATIM_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.asyncio
async def test_query_parameters_stay_out_at_debug(
    verbatim_levels: None, served: io.StringIO
) -> None:
    secret = secrets.token_urlsafe(24)
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("CREATE TABLE sessions (csrf_token TEXT)")
        await db.execute("INSERT INTO sessions VALUES (?)", (secret,))
    assert logging.getLogger("aiosqlite").isEnabledFor(logging.INFO)
    assert secret not in served.getvalue()


def test_verbatim_loggers_follow_a_quieter_level(
    verbatim_levels: None, served: io.StringIO
) -> None:
    configure_logging("WARNING")
    assert logging.getLogger("hpack").level == logging.WARNING
    configure_logging("DEBUG")
    assert logging.getLogger("hpack").level == logging.INFO


@pytest.mark.parametrize("logger", ["uvicorn.error", "websockets.server"])
def test_a_shortened_frame_keeps_no_piece_of_the_token(
    verbatim_levels: None, served: io.StringIO, logger: str
) -> None:
    message = json.dumps({"type": "join", "token": JWT, "name": "Alice"}, separators=(",", ":"))
    frame = Frame(Opcode.TEXT, message.encode())
    assert "..." in str(frame), "websockets no longer shortens frames: a full token is tested"
    logging.getLogger(logger).debug("< %s", frame)
    logged = served.getvalue()
    assert '"type":"join"' in logged
    assert "eyJ" not in logged
    assert JWT[-6:] not in logged


def test_a_credential_member_in_a_logged_message(served: io.StringIO) -> None:
    csrf = secrets.token_urlsafe(24)
    logging.getLogger("uvicorn.error").debug(
        "> TEXT %s", json.dumps({"type": "welcome", "csrf_token": csrf, "room": "r1"})
    )
    logged = served.getvalue()
    assert csrf not in logged
    assert '"csrf_token": "[redacted]"' in logged
    assert '"room": "r1"' in logged


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("redis://:{pw}@127.0.0.1:6379/0", "redis://:[redacted]@127.0.0.1:6379/0"),
        ("postgresql+asyncpg://app:{pw}@db/live", "postgresql+asyncpg://app:[redacted]@db/live"),
        ("http://127.0.0.1:8000/x?next=/a@b", "http://127.0.0.1:8000/x?next=/a@b"),
    ],
)
def test_the_password_of_a_url(served: io.StringIO, url: str, kept: str) -> None:
    password = secrets.token_urlsafe(12)
    logging.getLogger("uvicorn.error").error("cannot connect to %s", url.format(pw=password))
    logged = served.getvalue()
    assert password not in logged
    assert kept in logged
