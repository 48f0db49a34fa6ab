"""Chat's rules as pure functions: what a message and a name may be, and whether an identity may
post now (the clock and what the database says are passed in)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from livestage.models import ChatRole

BODY_MAX = 500
NAME_MAX = 40
HISTORY = 50
# The rate limit: at most RATE_COUNT messages per identity within RATE_WINDOW.
RATE_COUNT = 5
RATE_WINDOW = timedelta(seconds=10)
SLOW_MODE_MAX_SECONDS = 300
TIMEOUT_MAX_MINUTES = 1440
IDENTITY = re.compile(
    r"viewer-[0-9a-f]{16}|user-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_SPACES = re.compile(r"\s+")


def _visible(text: str) -> str:
    """Tabs and line breaks become spaces; every other control character goes."""
    text = text.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return "".join(c for c in text if unicodedata.category(c) != "Cc").strip()


def clean_body(body: str) -> str | None:
    """The body as stored (plain text, never markup: pages insert it as text), or None when it
    is empty or longer than BODY_MAX characters once cleaned."""
    text = _visible(body)
    return text if 1 <= len(text) <= BODY_MAX else None


def clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    text = _SPACES.sub(" ", _visible(name))
    return text if 1 <= len(text) <= NAME_MAX else None


def role(user_id: UUID | None, admin: bool, owner_id: UUID) -> ChatRole:
    """A chatter's role in the chat of the influencer whose user is `owner_id`."""
    if admin:
        return ChatRole.admin
    return ChatRole.influencer if user_id == owner_id else ChatRole.viewer


@dataclass(frozen=True, slots=True)
class Wait:
    """Refused for now: why (`rate_limit` or `slow_mode`) and how many whole seconds to wait."""

    reason: str
    seconds: int


def wait_before_posting(
    recent: Sequence[datetime], now: datetime, *, slow_mode_seconds: int
) -> Wait | None:
    """`recent` are when the identity's latest RATE_COUNT messages in this stream were sent
    (newest first); None when it may post now."""
    if slow_mode_seconds and recent:
        free_at = recent[0] + timedelta(seconds=slow_mode_seconds)
        if free_at > now:
            return Wait("slow_mode", _whole_seconds(free_at - now))
    in_window = [sent for sent in recent if sent > now - RATE_WINDOW]
    if len(in_window) >= RATE_COUNT:
        # Free again when the oldest message that keeps it at the limit leaves the window.
        free_at = in_window[RATE_COUNT - 1] + RATE_WINDOW
        return Wait("rate_limit", _whole_seconds(free_at - now))
    return None


def _whole_seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
