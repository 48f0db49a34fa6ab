"""What the logs may hold: no join token, JWT, cookie or credential from any logger, and an
error's traceback of bounded size, cheap to write."""

from __future__ import annotations

import io
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import structlog
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter

from livestage.logging import configure_logging

# Minted at run time with a throwaway key: no literal token in the repository.
JWT = jwt.encode({"room": "room-1"}, secrets.token_hex(32), algorithm="HS256")
SESSION = "s3ss10n-v4lue"
CSRF = "csrf-v4lue"
SECRETS = (JWT, "eyJ", SESSION, CSRF, "hunter2", "123456", "0p4que")
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "websockets.server")


def _uvicorn_handler(kind: str, stream: io.StringIO) -> logging.Handler:
    """A handler as uvicorn's LOGGING_CONFIG builds it (without dictConfig, which would close
    every handler of the test session)."""
    formatter_class = AccessFormatter if kind == "access" else DefaultFormatter
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        formatter_class(LOGGING_CONFIG["formatters"][kind]["fmt"], use_colors=False)
    )
    return handler


@pytest.fixture
def served() -> Iterator[io.StringIO]:
    """Logging as `livestage serve --log-level debug` leaves it: uvicorn's handlers first, then
    configure_logging (run by create_app), every handler writing to one buffer."""
    saved = {name: _state(logging.getLogger(name)) for name in LOGGERS}
    saved_structlog = structlog.get_config()
    buffer = io.StringIO()
    logging.getLogger().handlers.clear()  # pytest's own, so that basicConfig adds one
    for name, kind in (("uvicorn", "default"), ("uvicorn.access", "access")):
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [_uvicorn_handler(kind, buffer)], False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    configure_logging("DEBUG")
    root_handler = logging.getLogger().handlers[0]
    assert isinstance(root_handler, logging.StreamHandler)
    root_handler.setStream(buffer)
    yield buffer
    for name, state in saved.items():
        _restore(logging.getLogger(name), state)
    structlog.configure(**saved_structlog)


def _state(logger: logging.Logger) -> tuple[Any, ...]:
    return logger.handlers[:], logger.level, logger.propagate


def _restore(logger: logging.Logger, state: tuple[Any, ...]) -> None:
    logger.handlers, logger.level, logger.propagate = state


def _lines(buffer: io.StringIO) -> list[str]:
    lines = buffer.getvalue().splitlines()
    for secret in SECRETS:
        assert not [line for line in lines if secret in line], secret
    return lines


class TestUvicornLines:
    def test_the_access_log_keeps_the_line_but_not_the_token(self, served: io.StringIO) -> None:
        path = f"/ws/local/room-1?token={JWT}&lang=en"
        access = logging.getLogger("uvicorn.access")
        access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:50000", "GET", path, "1.1", 101)
        access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:50000", "GET", "/healthz", "1.1", 200)
        assert _lines(served) == [
            'INFO:     203.0.113.7:50000 - "GET /ws/local/room-1?token=[redacted]&lang=en '
            'HTTP/1.1" 101 Switching Protocols',
            'INFO:     203.0.113.7:50000 - "GET /healthz HTTP/1.1" 200 OK',
        ]

    def test_an_accepted_websocket_keeps_its_path(self, served: io.StringIO) -> None:
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "203.0.113.7:50000", f"/ws/local/r?token={JWT}"
        )
        assert _lines(served) == [
            'INFO:     203.0.113.7:50000 - "WebSocket /ws/local/r?token=[redacted]" [accepted]'
        ]

    def test_other_credentials_in_a_query_string(self, served: io.StringIO) -> None:
        query = "next=/admin&code=123456&password=hunter2&client_secret=0p4que&page=2"
        logging.getLogger("uvicorn.error").debug("< GET %s HTTP/1.1", f"/login?{query}")
        assert _lines(served) == [
            "DEBUG:    < GET /login?next=/admin&code=[redacted]&password=[redacted]"
            "&client_secret=[redacted]&page=2 HTTP/1.1"
        ]


class TestWebSocketHeaders:
    """The websockets library logs the handshake at DEBUG, one header a line, through uvicorn's
    logger on the server and its own loggers elsewhere."""

    @pytest.mark.parametrize("logger", ["uvicorn.error", "websockets.server"])
    def test_credential_headers_are_redacted(self, served: io.StringIO, logger: str) -> None:
        log = logging.getLogger(logger)
        log.debug("< %s: %s", "Host", "127.0.0.1:8000")
        log.debug("< %s: %s", "cookie", f"livestage_session={SESSION}; livestage_csrf={CSRF}")
        log.debug("< %s: %s", "Authorization", f"Bearer {JWT}")
        log.debug("> %s: %s", "Set-Cookie", f"livestage_csrf={CSRF}; Path=/; SameSite=lax")
        log.debug("< %s: %s", "Sec-WebSocket-Version", "13")
        prefix = "DEBUG:    " if logger.startswith("uvicorn") else ""
        assert _lines(served) == [
            f"{prefix}< Host: 127.0.0.1:8000",
            f"{prefix}< cookie: [redacted]",
            f"{prefix}< Authorization: [redacted]",
            f"{prefix}> Set-Cookie: [redacted]",
            f"{prefix}< Sec-WebSocket-Version: 13",
        ]

    def test_session_cookies_anywhere_in_a_line(self, served: io.StringIO) -> None:
        logging.getLogger("websockets.server").debug(
            "headers %s", {"x-forwarded": f"livestage_session={SESSION}", "host": "h"}
        )
        assert _lines(served) == [
            "headers {'x-forwarded': 'livestage_session=[redacted]', 'host': 'h'}"
        ]

    def test_mapping_arguments(self, served: io.StringIO) -> None:
        logging.getLogger("websockets.server").info("%(url)s", {"url": f"/x?token={JWT}"})
        assert _lines(served) == ["/x?token=[redacted]"]


class TestOwnLogs:
    def test_structlog_values_are_redacted(
        self, served: io.StringIO, capfd: pytest.CaptureFixture[str]
    ) -> None:
        structlog.get_logger().info(
            "streams.signalling.joined",
            url=f"/ws/local/r?token={JWT}",
            header=f"cookie: livestage_session={SESSION}",
            room="room-1",
        )
        out = capfd.readouterr().out
        assert "room=room-1" in out
        assert "url='/ws/local/r?token=[redacted]'" in out
        for secret in SECRETS:
            assert secret not in out

    def test_configuring_again_adds_no_second_filter(self, served: io.StringIO) -> None:
        configure_logging("DEBUG")
        for name in LOGGERS:
            for handler in logging.getLogger(name).handlers:
                assert len(handler.filters) == 1


def _deep(depth: int) -> None:
    padding = "local value " * 10_000  # noqa: F841  (a large local in every frame)
    if depth == 0:
        raise RuntimeError(f"boom /x?token={JWT}")
    _deep(depth - 1)


class TestErrorTracebacks:
    @pytest.mark.parametrize("as_json", [False, True])
    def test_a_deep_error_is_logged_small_and_fast(
        self, capfd: pytest.CaptureFixture[str], as_json: bool
    ) -> None:
        saved = structlog.get_config()
        configure_logging("INFO", json=as_json)
        capfd.readouterr()
        try:
            _deep(300)
        except RuntimeError:
            started = time.perf_counter()
            structlog.get_logger().exception("http.unhandled_error", path="/x")
            elapsed = time.perf_counter() - started
        finally:
            structlog.configure(**saved)
        out = capfd.readouterr().out
        text = json.loads(out)["exception"] if as_json else out
        assert "Traceback (most recent call last)" in text
        assert "RuntimeError: boom /x?token=[redacted]" in text
        assert "local value" not in text
        assert len(out) < 25_000
        assert elapsed < 0.2
