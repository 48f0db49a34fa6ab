"""Chaos delivery for webhooks: duplicated copies with random delays, reproducible by seed.

The random draws happen when an event is emitted (synchronously, in emission order), so the same
seed and the same sequence of events give the same plan: copies per event and each copy's delay.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from hms_emulator.config import WebhookChaos
from hms_emulator.errors import invalid_body

MAX_DUPLICATES = 10
MAX_DELAY_SECONDS = 60.0


class ChaosPlanner:
    def __init__(self, settings: WebhookChaos) -> None:
        check_chaos(settings)
        self.seed = settings.seed if settings.seed is not None else secrets.randbits(32)
        self.settings = WebhookChaos(
            settings.duplicates_min,
            settings.duplicates_max,
            settings.max_delay_seconds,
            self.seed,
        )
        self._rng = random.Random(self.seed)

    def delays(self) -> list[float]:
        """One delay (seconds, microsecond-rounded) per copy of the next event."""
        s = self.settings
        copies = self._rng.randint(s.duplicates_min, s.duplicates_max)
        return [round(self._rng.uniform(0.0, s.max_delay_seconds), 6) for _ in range(copies)]

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "duplicates_min": s.duplicates_min,
            "duplicates_max": s.duplicates_max,
            "max_delay_seconds": s.max_delay_seconds,
            "seed": s.seed,
        }


def check_chaos(settings: WebhookChaos) -> None:
    low, high = settings.duplicates_min, settings.duplicates_max
    if not _is_int(low) or not 1 <= low <= MAX_DUPLICATES:
        raise invalid_body(f"duplicates_min must be an integer in 1..{MAX_DUPLICATES}")
    if not _is_int(high) or not low <= high <= MAX_DUPLICATES:
        raise invalid_body(f"duplicates_max must be an integer in duplicates_min..{MAX_DUPLICATES}")
    delay = settings.max_delay_seconds
    if not _is_number(delay) or not 0 <= delay <= MAX_DELAY_SECONDS:
        raise invalid_body(f"max_delay_seconds must be a number in 0..{MAX_DELAY_SECONDS:g}")
    if settings.seed is not None and not _is_int(settings.seed):
        raise invalid_body("seed must be an integer")


def chaos_from_json(body: dict[str, Any]) -> WebhookChaos:
    defaults = WebhookChaos()
    settings = WebhookChaos(
        duplicates_min=body.get("duplicates_min", defaults.duplicates_min),
        duplicates_max=body.get("duplicates_max", defaults.duplicates_max),
        max_delay_seconds=body.get("max_delay_seconds", defaults.max_delay_seconds),
        seed=body.get("seed"),
    )
    check_chaos(settings)
    return WebhookChaos(
        settings.duplicates_min,
        settings.duplicates_max,
        float(settings.max_delay_seconds),
        settings.seed,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
