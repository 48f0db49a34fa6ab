"""Tracking's Prometheus figures: provider events stored by the inbox and applied by the
worker. Counted after the commit that made them true (a rolled-back batch counts nothing)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_RECEIVED = Counter(
    "livestage_webhook_events_received",
    "Provider events stored by the inbox, by source and whether each was new or a duplicate.",
    ["source", "outcome"],
)
EVENTS_APPLIED = Counter(
    "livestage_webhook_events_applied",
    "Stored events the worker applied, and attempts that failed (retried up to 5 times).",
    ["outcome"],
)
APPLY_LAG = Histogram(
    "livestage_webhook_apply_lag_seconds",
    "Seconds from an event's storage to its application by the worker.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)

RECONCILER_RUNS = Counter(
    "livestage_reconciler_runs",
    "Reconciler runs in this process (in a cluster, only the leader's count grows).",
)

for _source in ("hms", "local"):
    for _outcome in ("new", "duplicate"):
        EVENTS_RECEIVED.labels(_source, _outcome)
for _outcome in ("applied", "failed"):
    EVENTS_APPLIED.labels(_outcome)


def count_received(source: str, stored: bool) -> None:
    EVENTS_RECEIVED.labels(source, "new" if stored else "duplicate").inc()


def count_applied(applied: int, failed: int, lags: list[float]) -> None:
    if applied:
        EVENTS_APPLIED.labels("applied").inc(applied)
    if failed:
        EVENTS_APPLIED.labels("failed").inc(failed)
    for lag in lags:
        APPLY_LAG.observe(lag)
