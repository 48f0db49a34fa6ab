"""Calls to 100ms as Prometheus figures: how long each took (retries included) and how each
failure ended. `call` is the method and the path with every id replaced by `{id}`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CALL_SECONDS = Histogram(
    "livestage_provider_call_seconds",
    "Seconds a call to the provider took, retries and their waits included.",
    ["call"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CALL_ERRORS = Counter(
    "livestage_provider_call_errors",
    "Calls to the provider that failed after their retries: transient (timeouts, 429, 5xx) "
    "or permanent (4xx, unexpected bodies, requests that could not be sent).",
    ["call", "kind"],
)

# The words of the 100ms paths the client calls; any other segment is an id.
PATH_WORDS = frozenset(
    {
        "rooms",
        "room-codes",
        "room",
        "role",
        "code",
        "active-rooms",
        "peers",
        "remove-peers",
        "end-room",
        "sessions",
        "live-streams",
        "start",
        "stop",
        "templates",
        "analytics",
        "webhooks",
        "token",
    }
)


def call_name(method: str, path: str, *, base: str = "") -> str:
    """`GET /rooms/{id}`: a label of bounded cardinality, never an id. `base` names the API
    the path belongs to (`auth` for the room-code exchange)."""
    segments = [s if s in PATH_WORDS else "{id}" for s in path.split("?")[0].split("/") if s]
    return f"{method} {base}/{'/'.join(segments)}"
