"""Where a run's secrets turned up: every place a test searched (a log, a response, a database
file), recorded as text, and each secret looked for in every place.

A secret is found as written, and also where a JSON or URL encoding changed how it is spelled
(`/` as `\\/` or `%2F`), so an escaped copy is not missed. A short numeric secret (a TOTP code)
is found only as a whole number not preceded by a dot: six digits also occur inside longer
numbers and as the microseconds of every timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")


@dataclass(frozen=True)
class Place:
    """Something the test saw: `owner` is the party it was shown to (a browser, the log)."""

    owner: str
    name: str
    text: str


@dataclass(frozen=True)
class Found:
    secret: str = field(repr=False)
    label: str
    place: str
    owner: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.label} in {self.place} ({self.owner}): …{self.excerpt}…"


@dataclass
class Secrets:
    """Every secret of a run, labelled (`label` says which, never the value)."""

    labels: dict[str, str] = field(default_factory=dict, repr=False)

    def add(self, label: str, value: str | None) -> None:
        if value and value not in self.labels:
            self.labels[value] = label

    def __len__(self) -> int:
        return len(self.labels)


def _spellings(secret: str) -> set[str]:
    return {secret, secret.replace("/", "\\/"), quote(secret, safe=""), quote(secret)}


def _pattern(secret: str) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(s) for s in sorted(_spellings(secret)))
    if secret.isdigit() and len(secret) < 10:
        return re.compile(rf"(?<![\d.])(?:{alternatives})(?!\d)")
    return re.compile(alternatives)


def _excerpt(text: str, start: int, end: int) -> str:
    # The secret itself is masked: a failing test's message must not leak it either.
    return f"{text[max(0, start - 60) : start]}<SECRET>{text[end : end + 20]}"


def search(secrets: Secrets, places: Iterable[Place]) -> list[Found]:
    patterns = [(secret, label, _pattern(secret)) for secret, label in secrets.labels.items()]
    found: list[Found] = []
    for place in places:
        for secret, label, pattern in patterns:
            if match := pattern.search(place.text):
                excerpt = _excerpt(place.text, match.start(), match.end())
                found.append(Found(secret, label, place.name, place.owner, excerpt))
    return found


def jwts(text: str) -> list[str]:
    return JWT.findall(text)
