"""structlog set-up. Anything that looks like a secret is redacted before it is written."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = re.compile(r"(secret|password|token|authorization|cookie|totp|key)", re.I)
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
SAFE_KEYS = {"token_status", "access_key_configured", "event"}


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key not in SAFE_KEYS and SECRET_KEYS.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str) and JWT.search(value):
            event[key] = JWT.sub("[redacted-jwt]", value)
    return event


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
