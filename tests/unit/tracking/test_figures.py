from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from livestage.tracking.figures import (
    Interval,
    concurrent_at,
    peak_concurrency,
    per_minute_peak,
    viewer_stats,
)

T0 = datetime(2026, 11, 21, 12, 0, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class TestPeak:
    def test_touching_intervals_do_not_overlap(self) -> None:
        intervals = [Interval("a", at(0), at(10)), Interval("b", at(10), at(20))]
        assert peak_concurrency(intervals) == 1

    def test_overlap_and_open_intervals(self) -> None:
        intervals = [
            Interval("a", at(0), at(30)),
            Interval("b", at(5), None),
            Interval("c", at(6), at(7)),
        ]
        assert peak_concurrency(intervals) == 3
        assert concurrent_at(intervals, at(6.5)) == 3
        assert concurrent_at(intervals, at(7)) == 2

    @settings(max_examples=100)
    @given(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 300)), max_size=40))
    def test_order_of_intervals_does_not_matter(self, raw: list[tuple[int, int]]) -> None:
        intervals = [Interval(str(i), at(s), at(s + d)) for i, (s, d) in enumerate(raw)]
        shuffled = intervals[:]
        random.Random(7).shuffle(shuffled)
        assert peak_concurrency(intervals) == peak_concurrency(shuffled)
        brute = max((concurrent_at(intervals, at(t / 2)) for t in range(0, 1300)), default=0)
        assert peak_concurrency(intervals) == brute


class TestSeries:
    def test_per_minute_peak_covers_start_to_end_minutes(self) -> None:
        intervals = [Interval("a", at(0), at(100)), Interval("b", at(20), at(40))]
        series = per_minute_peak(intervals, at(0), at(100))
        assert [(m.minute, v) for m, v in series] == [(0, 2), (1, 2), (2, 1)]

    def test_a_viewer_who_left_before_the_minute_is_not_counted(self) -> None:
        intervals = [Interval("a", at(0), at(29)), Interval("b", at(95), at(100))]
        series = per_minute_peak(intervals, at(0), at(100))
        assert [v for _, v in series] == [1, 0, 1]


class TestStats:
    def test_unique_by_user_and_watch_time(self) -> None:
        intervals = [
            Interval("u1", at(0), at(60)),
            Interval("u1", at(120), at(150)),
            Interval("u2", at(10), at(20)),
        ]
        stats = viewer_stats(intervals, start=at(0), end=at(200), now=at(500))
        assert stats.unique == 2
        assert stats.peak == 2
        assert stats.current == 0
        assert stats.total_watch_seconds == 100.0
        assert stats.average_watch_seconds == 50.0

    def test_open_interval_counts_until_now(self) -> None:
        stats = viewer_stats([Interval("u", at(0), None)], start=at(0), end=None, now=at(42))
        assert stats.current == 1
        assert stats.total_watch_seconds == 42.0


def test_a_leave_exactly_at_a_minute_start_is_not_in_that_minute() -> None:
    start = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    intervals = [Interval("a", start, start + timedelta(minutes=1))]
    series = per_minute_peak(intervals, start, start + timedelta(minutes=2))
    assert [v for _, v in series] == [1, 0, 0]
