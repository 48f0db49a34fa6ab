"""Viewer numbers from peer intervals (pure). Every figure is a function of the set of peers,
so duplicated, missing-then-replayed or reordered events converge to the same result.

A viewer is a peer that is not the broadcaster. A peer is the half-open interval
[joined_at, left_at): a leave and a join at the same instant do not overlap.
"""

from __future__ import annotations

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


def _edges(intervals: Iterable[Interval]) -> list[tuple[datetime, int]]:
    edges = []
    for item in intervals:
        edges.append((item.joined_at, +1))
        if item.left_at is not None:
            edges.append((item.left_at, -1))
    # Leaves sort before joins at the same instant: half-open intervals.
    return sorted(edges, key=lambda edge: (edge[0], edge[1]))


def peak_concurrency(intervals: Iterable[Interval]) -> int:
    level = peak = 0
    for _, delta in _edges(intervals):
        level += delta
        peak = max(peak, level)
    return peak


def concurrent_at(intervals: Iterable[Interval], instant: datetime) -> int:
    return sum(
        1
        for i in intervals
        if i.joined_at <= instant and (i.left_at is None or instant < i.left_at)
    )


def per_minute_peak(
    intervals: list[Interval], start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """Max concurrent viewers within [minute, minute + 60 s) for each minute of [start, end]."""
    first = start.replace(second=0, microsecond=0)
    last = end.replace(second=0, microsecond=0)
    edges = _edges(intervals)
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
    total = timedelta()
    for item in intervals:
        total += (item.left_at or max(until, item.joined_at)) - item.joined_at
    return total.total_seconds()


def viewer_stats(
    intervals: list[Interval], *, start: datetime | None, end: datetime | None, now: datetime
) -> ViewerStats:
    unique = len({i.user_id for i in intervals})
    total = watch_seconds(intervals, now)
    series = per_minute_peak(intervals, start, end or now) if start else []
    return ViewerStats(
        current=sum(1 for i in intervals if i.left_at is None),
        peak=peak_concurrency(intervals),
        unique=unique,
        total_watch_seconds=total,
        average_watch_seconds=total / unique if unique else 0.0,
        per_minute=series,
    )
