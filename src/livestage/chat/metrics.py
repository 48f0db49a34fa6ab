"""Chat's counters (summed over the processes by analytics/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter

CHAT_MESSAGES = Counter("livestage_chat_messages", "Chat messages posted.")
