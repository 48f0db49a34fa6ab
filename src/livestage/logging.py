"""structlog set-up. Anything that looks like a secret is redacted before it is written, in our
own logs and in every record the standard library's handlers write (uvicorn, websockets)."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

SECRET_KEYS = re.compile(r"(secret|password|token|authorization|cookie|totp|key)", re.I)
SAFE_KEYS = {"token_status", "access_key_configured", "event"}
REDACTED = "[redacted]"

_HEADER = re.compile(
    r"(?P<name>\b(?:set-)?cookie|\b(?:proxy-)?authorization)(?P<sep>['\"]\s*[:,]\s*b?|\s*:\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\r\n]+)",
    re.I,
)
_QUERY = re.compile(r"([?&](?:\w*(?:token|secret|password)|code)=)[^&#\s'\"]+", re.I)
_COOKIE = re.compile(r"\b(livestage_\w+=)[^;,\s'\"]+")
# The password of a URL (redis://:pw@host, postgresql://user:pw@host) in an error message.
_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:/?#\s@]*:)[^@/?#\s]+(?=@)", re.I)
# A JSON member whose name says credential, in a message logged whole (a WebSocket frame).
_MEMBER = re.compile(r"(\"[\w-]*(?:token|secret|password)[\w-]*\"\s*:\s*\")[^\"]*", re.I)
# Also a JWT the websockets library shortened for its log ("eyJhbGci...dKguZg"): its head
# and tail are still the token's.
_JWT = re.compile(r"eyJ[\w-]*(?:\.{1,3}[\w-]*)*")

# Loggers whose DEBUG lines hold what they carry, which no pattern can tell from noise:
# aiosqlite logs every query with its parameters (a session's CSRF token, a stored ciphertext),
# hpack every HTTP/2 header it decodes (a provider call's Authorization).
VERBATIM_LOGGERS = ("aiosqlite", "hpack")

TRACEBACK_FRAMES = 30
TRACEBACK_CHARS = 20_000


def _header_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match['name']}{match['sep']}{quote}{REDACTED}{quote}"


def _keep_name(match: re.Match[str]) -> str:
    return f"{match[1]}{REDACTED}"


def redact_text(text: str) -> str:
    """`text` without JWTs, credential query parameters, credential headers' values and
    livestage's cookies."""
    lowered = text.lower()
    for markers, pattern, replacement in _RULES:
        # A substring test first: it runs on every access-log line, and most hold no secret.
        if any(marker in lowered for marker in markers):
            text = pattern.sub(replacement, text)
    return text


_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], Any], ...] = (
    (("cookie", "authorization"), _HEADER, _header_value),
    (("token", "secret", "password", "code="), _QUERY, _keep_name),
    (("livestage_",), _COOKIE, _keep_name),
    (("token", "secret", "password"), _MEMBER, _keep_name),
    (("://",), _URL_PASSWORD, _keep_name),
    (("eyj",), _JWT, REDACTED),
)


def _redact_value(value: object) -> object:
    return redact_text(value) if isinstance(value, str) else value


def _redact_args(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {key: _redact_value(value) for key, value in args.items()}
    return tuple(_redact_value(arg) for arg in args or ())


class RedactSecrets(logging.Filter):
    """Redacts every record a handler writes, whichever logger made it: uvicorn logs the
    local provider's signalling URL with its join token, and the websockets library logs the
    handshake's headers (cookies) at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed record: the formatter reports it
        if redact_text(message) == message:
            return True
        # Arguments one by one first, so that uvicorn's access formatter still finds its five.
        record.msg, record.args = _redact_value(record.msg), _redact_args(record.args)
        message = record.getMessage()
        if (clean := redact_text(message)) != message:
            # A secret split over arguments: "< %s: %s" % ("cookie", "a=b").
            record.msg, record.args = clean, ()
        return True


_REDACT_SECRETS = RedactSecrets()


def _install_redaction() -> None:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if _REDACT_SECRETS not in handler.filters:
                handler.addFilter(_REDACT_SECRETS)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key not in SAFE_KEYS and SECRET_KEYS.search(key):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


def _exception(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    return sys.exc_info()[1] if exc_info else None


def bounded_traceback(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The error as a plain traceback: its last frames, no local variables, at most
    TRACEBACK_CHARS. Rendered with locals by Rich, one error came to a megabyte, written while
    the event loop waited."""
    exc = _exception(event.pop("exc_info", None))
    if exc is not None:
        text = "".join(traceback.format_exception(exc, limit=-TRACEBACK_FRAMES))
        if len(text) > TRACEBACK_CHARS:
            text = f"[{len(text) - TRACEBACK_CHARS} characters cut]\n{text[-TRACEBACK_CHARS:]}"
        event["exception"] = text.rstrip("\n")
    return event


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    for name in VERBATIM_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
    _install_redaction()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            bounded_traceback,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
