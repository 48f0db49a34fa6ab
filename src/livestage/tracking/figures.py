"""Viewer numbers from peer intervals (pure). Every figure is a function of the set of peers,
so duplicated, missing-then-replayed or reordered events converge to the same result.

A viewer is a peer that is not the broadcaster. A peer is the half-open interval
[joined_at, left_at): a leave and a join at the same instant do not overlap.

Figures count viewers, not peers (SPEC §4): a peer's `user_id` is the viewer's identity, and
one viewer's tabs, reloads and reconnects are one viewer connected over the union of their
peers' intervals (`connected_spans`). Two tabs open at once count once in the current and
peak figures, and their watch time is not counted twice.

The figures are computed on `Span`s, times as integer microseconds since the epoch: exact, and
sorted, compared and summed several times faster than datetimes. The functions taking
`Interval`s (datetimes) convert to them.

A peer whose leave is earlier than its join (a join applied after its stream ended is closed
at the end) is connected for no time.

A live stream's history grows with every join, so its figures are carried forward: a
`Checkpoint` holds what every viewer before a minute's start adds to them, and `stats_of`
then needs only the peers still connected at that instant or later (a window, see `stats_of`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import itemgetter

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MINUTE_US = 60_000_000
_SECOND_US = 1_000_000

# (user id, joined, left or None while connected); times in microseconds since the epoch.
Span = tuple[str, int, int | None]


@dataclass(frozen=True, slots=True)
class Interval:
    user_id: str
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a stream's viewers add to its figures before `at` (a minute's start): `peak`, the
    most connected at once before it, and `watched`, their time before it (microseconds)."""

    at: int
    peak: int
    watched: int


@dataclass(frozen=True, slots=True)
class ViewerStats:
    current: int
    peak: int
    unique: int
    total_watch_seconds: float
    average_watch_seconds: float
    per_minute: list[tuple[datetime, int]]
    # The figures before the instant `stats_of` was asked to carry them to (None if not asked).
    checkpoint: Checkpoint | None = None


def microseconds(at: datetime) -> int:
    """`at` (aware) as microseconds since the epoch, exactly."""
    return (at - EPOCH) // _MICROSECOND


def instant(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def _span(item: Interval) -> Span:
    joined, left = microseconds(item.joined_at), item.left_at
    return item.user_id, joined, None if left is None else max(microseconds(left), joined)


def _from(spans: Iterable[Span], at: int) -> list[Span]:
    """The spans' time from `at` on (a leave before its join read as the join): those that end
    by `at` left out, the others starting at `at` at the earliest."""
    # Conditional expressions, not max(): a call each was most of this function's time.
    return [
        (
            user_id,
            joined if joined > at else at,
            None if left is None else left if left > joined else joined,
        )
        for user_id, joined, left in spans
        if left is None or left > at or joined > at
    ]


def _interval(span: Span) -> Interval:
    user_id, joined, left = span
    return Interval(user_id, instant(joined), None if left is None else instant(left))


def connected_spans(intervals: Iterable[Interval]) -> list[Interval]:
    """Each viewer's connected time as disjoint intervals: the union of their peers'. Intervals
    that overlap or touch merge (a reload's new peer may join before the old one has left)."""
    return [_interval(span) for span in merged(map(_span, intervals))]


def merged(spans: Iterable[Span]) -> list[Span]:
    """`connected_spans` on spans."""
    spans = spans if isinstance(spans, list) else list(spans)
    # Most viewers have one peer: only those with more are grouped and merged.
    repeated = {user for user, peers in Counter(map(itemgetter(0), spans)).items() if peers > 1}
    if not repeated:
        return spans
    result = [span for span in spans if span[0] not in repeated]
    by_viewer: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if span[0] in repeated:
            by_viewer[span[0]].append(span)
    for items in by_viewer.values():
        items.sort(key=itemgetter(1))
        user_id, joined, reached = items[0]
        for _, item_joined, item_left in items[1:]:
            if reached is None:
                break  # still connected: it covers every later peer
            if item_joined > reached:
                result.append((user_id, joined, reached))
                joined, reached = item_joined, item_left
            elif item_left is None or item_left > reached:
                reached = item_left
        result.append((user_id, joined, reached))
    return result


def _edges(spans: Iterable[Span]) -> list[int]:
    """Every join and leave as one integer: its time × 2, plus 1 for a join. Integers sort
    several times faster than (time, change) pairs, and a leave sorts before a join at the
    same instant (half-open intervals)."""
    edges = [joined * 2 + 1 for _, joined, _ in spans]
    edges += [left * 2 for _, _, left in spans if left is not None]
    edges.sort()
    return edges


def _levels(edges: list[int]) -> list[int]:
    """How many are connected just after each edge."""
    return list(accumulate([(edge & 1) * 2 - 1 for edge in edges]))


def peak_concurrency(intervals: Iterable[Interval]) -> int:
    """The most viewers connected at one instant."""
    return _peak(_levels(_edges(merged(map(_span, intervals)))))


def _peak(levels: list[int]) -> int:
    return max(max(levels, default=0), 0)


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
    edges = _edges(merged(map(_span, intervals)))
    return _series(edges, _levels(edges), microseconds(start), microseconds(end))


def _series(
    edges: list[int], levels: list[int], start: int, end: int
) -> list[tuple[datetime, int]]:
    minute = start - start % MINUTE_US
    last = end - end % MINUTE_US
    series = []
    while minute <= last:
        # The level at the minute's first instant already includes every join and leave at that
        # instant: a viewer who left at exactly hh:mm:00.000000 is not there during that minute.
        first = bisect_left(edges, (minute + 1) * 2)
        after = bisect_left(edges, (minute + MINUTE_US) * 2, first)
        level = levels[first - 1] if first else 0
        series.append((instant(minute), max(level, max(levels[first:after], default=0))))
        minute += MINUTE_US
    return series


def watch_seconds(intervals: Iterable[Interval], until: datetime) -> float:
    """Time watched, summed over viewers: each viewer's connected time once, however many
    tabs they had open. A viewer still connected counts until `until`."""
    return _watched(merged(map(_span, intervals)), microseconds(until)) / _SECOND_US


def _watched(spans: Iterable[Span], until: int) -> int:
    total = 0
    for _, joined, left in spans:
        total += (max(until, joined) if left is None else left) - joined
    return total


def viewer_stats(
    intervals: list[Interval], *, start: datetime | None, end: datetime | None, now: datetime
) -> ViewerStats:
    return stats_of(
        [_span(item) for item in intervals],
        start=None if start is None else microseconds(start),
        end=None if end is None else microseconds(end),
        now=microseconds(now),
    )


# Before every span: a checkpoint that carries nothing, so every span is in the window.
_NOTHING_BEFORE = Checkpoint(at=-(2**62), peak=0, watched=0)


def stats_of(
    spans: list[Span],
    *,
    start: int | None,
    end: int | None,
    now: int,
    since: Checkpoint | None = None,
    unique: int | None = None,
    carry_to: int | None = None,
) -> ViewerStats:
    """`viewer_stats` on spans.

    With `since`, the figures before `since.at` come from it: `spans` need only be those still
    connected at `since.at` or later (a superset does no harm), `unique` must be given (it
    counts every viewer ever), and the per-minute series starts at `since.at`. Then `now` must
    not be before `since.at`, nor `end` if given.

    With `carry_to` (a minute's start, from `since.at` to `now`), the result's `checkpoint`
    carries the figures to it, for the next call's `since`.
    """
    before = since or _NOTHING_BEFORE
    connected = merged(_from(spans, before.at))
    edges = _edges(connected)
    levels = _levels(edges)
    if unique is None:
        unique = len({user_id for user_id, _, _ in connected})
    total = (before.watched + _watched(connected, now)) / _SECOND_US
    if start is not None and since is not None:
        start = max(start, since.at)
    return ViewerStats(
        current=sum(1 for _, _, left in connected if left is None),
        peak=max(before.peak, _peak(levels)),
        unique=unique,
        total_watch_seconds=total,
        average_watch_seconds=total / unique if unique else 0.0,
        per_minute=(
            [] if start is None else _series(edges, levels, start, now if end is None else end)
        ),
        checkpoint=None
        if carry_to is None
        else _carried(before, connected, edges, levels, carry_to),
    )


def _carried(
    before: Checkpoint, connected: list[Span], edges: list[int], levels: list[int], to: int
) -> Checkpoint:
    """`before` carried to `to` over the window's spans, edges and levels."""
    earlier = bisect_left(edges, to * 2)
    watched = sum(
        min(to if left is None else left, to) - joined
        for _, joined, left in connected
        if joined < to
    )
    return Checkpoint(
        at=to, peak=max(before.peak, _peak(levels[:earlier])), watched=before.watched + watched
    )
