"""Viewer numbers from peer intervals (pure). Every figure is a function of the set of peers,
so duplicated, missing-then-replayed or reordered events converge to the same result.

A viewer is a peer that is not the broadcaster. A peer is the half-open interval
[joined_at, left_at): a leave and a join at the same instant do not overlap.

Figures count viewers, not peers (SPEC §4): a peer's `user_id` is the viewer's identity, and
one viewer's tabs, reloads and reconnects are one viewer connected over the union of their
peers' intervals (`connected_spans`). Two tabs open at once count once in the current and
peak figures, and their watch time is not counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Interval:
    user_id: str
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class ViewerStats:
    current: int
    peak: int
    unique: int
    total_watch_seconds: float
    average_watch_seconds: float
    per_minute: list[tuple[datetime, int]]


def connected_spans(intervals: Iterable[Interval]) -> list[Interval]:
    """Each viewer's connected time as disjoint intervals: the union of their peers'. Intervals
    that overlap or touch merge (a reload's new peer may join before the old one has left)."""
    by_viewer: dict[str, list[Interval]] = defaultdict(list)
    for item in intervals:
        by_viewer[item.user_id].append(item)
    spans: list[Interval] = []
    for items in by_viewer.values():
        if len(items) == 1:  # most viewers: one peer
            spans.append(items[0])
            continue
        items.sort(key=lambda item: item.joined_at)
        span = items[0]
        for item in items[1:]:
            if (reached := span.left_at) is None:
                break  # still connected: it covers every later peer
            if item.joined_at > reached:
                spans.append(span)
                span = item
            elif item.left_at is None or item.left_at > reached:
                span = Interval(span.user_id, span.joined_at, item.left_at)
        spans.append(span)
    return spans


def _edges(intervals: Iterable[Interval]) -> list[tuple[datetime, int]]:
    edges = []
    for item in intervals:
        edges.append((item.joined_at, +1))
        if item.left_at is not None:
            edges.append((item.left_at, -1))
    # Leaves (-1) sort before joins (+1) at the same instant: half-open intervals.
    edges.sort()
    return edges


def peak_concurrency(intervals: Iterable[Interval]) -> int:
    """The most viewers connected at one instant."""
    return _peak(connected_spans(intervals))


def _peak(spans: Iterable[Interval]) -> int:
    level = peak = 0
    for _, delta in _edges(spans):
        level += delta
        peak = max(peak, level)
    return peak


def concurrent_at(intervals: Iterable[Interval], instant: datetime) -> int:
    """How many viewers are connected at `instant`."""
    return len(
        {
            i.user_id
            for i in intervals
            if i.joined_at <= instant and (i.left_at is None or instant < i.left_at)
        }
    )


def per_minute_peak(
    intervals: Iterable[Interval], start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """Max concurrent viewers within [minute, minute + 60 s) for each minute of [start, end]."""
    return _series(connected_spans(intervals), start, end)


def _series(
    spans: Iterable[Interval], start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    first = start.replace(second=0, microsecond=0)
    last = end.replace(second=0, microsecond=0)
    edges = _edges(spans)
    series, level, index = [], 0, 0
    minute = first
    while minute <= last:
        # The level at the minute's first instant already includes every join and leave at that
        # instant: a viewer who left at exactly hh:mm:00.000000 is not there during that minute.
        while index < len(edges) and edges[index][0] <= minute:
            level += edges[index][1]
            index += 1
        peak = level
        while index < len(edges) and edges[index][0] < minute + MINUTE:
            level += edges[index][1]
            index += 1
            peak = max(peak, level)
        series.append((minute, peak))
        minute += MINUTE
    return series


def watch_seconds(intervals: Iterable[Interval], until: datetime) -> float:
    """Time watched, summed over viewers: each viewer's connected time once, however many
    tabs they had open. A viewer still connected counts until `until`."""
    return _watched(connected_spans(intervals), until)


def _watched(spans: Iterable[Interval], until: datetime) -> float:
    total = timedelta()
    for item in spans:
        total += (item.left_at or max(until, item.joined_at)) - item.joined_at
    return total.total_seconds()


def viewer_stats(
    intervals: list[Interval], *, start: datetime | None, end: datetime | None, now: datetime
) -> ViewerStats:
    spans = connected_spans(intervals)
    unique = len({i.user_id for i in spans})
    total = _watched(spans, now)
    series = _series(spans, start, end or now) if start else []
    return ViewerStats(
        current=sum(1 for i in spans if i.left_at is None),
        peak=_peak(spans),
        unique=unique,
        total_watch_seconds=total,
        average_watch_seconds=total / unique if unique else 0.0,
        per_minute=series,
    )
