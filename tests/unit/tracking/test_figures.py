from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from livestage.tracking.figures import (
    Interval,
    Span,
    concurrent_at,
    connected_spans,
    instant,
    microseconds,
    peak_concurrency,
    per_minute_peak,
    stats_of,
    viewer_stats,
    watch_seconds,
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


class TestOneViewerManyPeers:
    """SPEC §4: a viewer's reloads, tabs and reconnects are one viewer (the peer's user_id)."""

    def test_reloads_and_a_second_tab_are_one_viewer_watching_the_union(self) -> None:
        intervals = [
            Interval("v", at(0), at(20)),  # first load
            Interval("v", at(19), at(40)),  # reload: the new peer joins before the old leaves
            Interval("v", at(45), at(90)),  # reload after a gap
            Interval("v", at(50), at(70)),  # a second tab meanwhile
            Interval("w", at(60), at(65)),
        ]
        stats = viewer_stats(intervals, start=at(0), end=at(100), now=at(200))
        assert (stats.unique, stats.peak, stats.current) == (2, 2, 0)
        assert stats.total_watch_seconds == 40 + 45 + 5
        assert stats.average_watch_seconds == 45.0
        assert [v for _, v in stats.per_minute] == [1, 2, 0]  # 12:00, 12:01, 12:02
        assert peak_concurrency(intervals[:4]) == 1
        assert concurrent_at(intervals, at(60)) == 2

    def test_two_open_tabs_are_one_current_viewer(self) -> None:
        intervals = [Interval("v", at(0), None), Interval("v", at(10), None)]
        stats = viewer_stats(intervals, start=at(0), end=None, now=at(30))
        assert (stats.current, stats.peak, stats.unique) == (1, 1, 1)
        assert stats.total_watch_seconds == 30.0

    def test_a_tab_left_open_covers_the_closed_ones_after_it(self) -> None:
        intervals = [Interval("v", at(0), None), Interval("v", at(5), at(8))]
        assert connected_spans(intervals) == [Interval("v", at(0), None)]
        assert watch_seconds(intervals, at(12)) == 12.0

    def test_touching_peers_of_one_viewer_merge(self) -> None:
        intervals = [Interval("v", at(10), at(20)), Interval("v", at(0), at(10))]
        assert connected_spans(intervals) == [Interval("v", at(0), at(20))]


# A peer: (viewer, start second, length in seconds, still connected?)
peers = st.lists(
    st.tuples(st.sampled_from("abcd"), st.integers(0, 120), st.integers(0, 60), st.booleans()),
    max_size=25,
)
UNTIL = 200


def _intervals(raw: list[tuple[str, int, int, bool]]) -> list[Interval]:
    return [Interval(v, at(s), None if open_ else at(s + d)) for v, s, d, open_ in raw]


def _covers(raw: list[tuple[str, int, int, bool]], viewer: str, second: int) -> bool:
    """Brute force on whole seconds: is `viewer` connected during [second, second + 1)?"""
    return any(v == viewer and s <= second < (UNTIL if open_ else s + d) for v, s, d, open_ in raw)


class TestPerViewerProperties:
    @settings(max_examples=200)
    @given(peers)
    def test_figures_match_a_brute_force_count_of_viewers(
        self, raw: list[tuple[str, int, int, bool]]
    ) -> None:
        intervals = _intervals(raw)
        viewers = {v for v, *_ in raw}
        connected = [sum(_covers(raw, v, t) for v in viewers) for t in range(UNTIL)]
        stats = viewer_stats(intervals, start=at(0), end=None, now=at(UNTIL))
        assert stats.peak == max(connected, default=0)
        assert stats.total_watch_seconds == sum(connected)
        assert stats.unique == len(viewers)
        assert stats.current == len({v for v, _, _, open_ in raw if open_})
        assert stats.peak <= stats.unique
        # T0 is half a minute past: minute k holds the seconds [60k - 30, 60k + 30).
        minutes = [max(connected[max(0, 60 * k - 30) : 60 * k + 30], default=0) for k in range(4)]
        assert [viewers for _, viewers in stats.per_minute] == minutes

    @settings(max_examples=200)
    @given(peers, st.data())
    def test_another_tab_inside_a_viewers_time_changes_nothing(
        self, raw: list[tuple[str, int, int, bool]], data: st.DataObject
    ) -> None:
        intervals = _intervals(raw)
        before = viewer_stats(intervals, start=at(0), end=None, now=at(UNTIL))
        if intervals:
            host = data.draw(st.sampled_from(intervals))
            end = host.left_at or at(UNTIL)
            offset = data.draw(st.integers(0, int((end - host.joined_at).total_seconds())))
            joined = host.joined_at + timedelta(seconds=offset)
            intervals.append(Interval(host.user_id, joined, end if host.left_at else None))
        shuffled = intervals[:]
        random.Random(3).shuffle(shuffled)
        assert viewer_stats(shuffled, start=at(0), end=None, now=at(UNTIL)) == before

    @settings(max_examples=200)
    @given(peers)
    def test_spans_are_disjoint_per_viewer(self, raw: list[tuple[str, int, int, bool]]) -> None:
        spans = connected_spans(_intervals(raw))
        for viewer in {s.user_id for s in spans}:
            own = sorted((s for s in spans if s.user_id == viewer), key=lambda s: s.joined_at)
            for earlier, later in zip(own, own[1:], strict=False):
                assert earlier.left_at is not None
                assert earlier.left_at < later.joined_at


# Spans in whole seconds from a minute's start (times in microseconds, as the recompute reads
# them); a negative length is a leave reported before its join.
_MINUTE_START = microseconds(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
span_seconds = st.tuples(
    st.sampled_from("abcd"), st.integers(0, 300), st.integers(-20, 150), st.booleans()
)


def _us(second: int) -> int:
    return _MINUTE_START + second * 1_000_000


def _spans(raw: list[tuple[str, int, int, bool]]) -> list[Span]:
    return [(v, _us(s), None if open_ else _us(s + d)) for v, s, d, open_ in raw]


class TestCarriedFigures:
    """A live stream's figures carried from a checkpoint over the peers still connected at it
    equal those recomputed from every peer, whatever arrives after the checkpoint."""

    @settings(max_examples=300)
    @given(st.lists(span_seconds, max_size=25), st.lists(span_seconds, max_size=10), st.data())
    def test_a_window_and_its_checkpoint_give_every_figure(
        self,
        before: list[tuple[str, int, int, bool]],
        later: list[tuple[str, int, int, bool]],
        data: st.DataObject,
    ) -> None:
        minute = data.draw(st.integers(0, 5), label="checkpoint minute")
        checkpoint_at = _us(60 * minute)
        now = checkpoint_at + data.draw(st.integers(0, 200)) * 1_000_000
        start = _us(data.draw(st.integers(0, 400)))
        spans = _spans(before)
        first = stats_of(spans, start=start, end=None, now=now, carry_to=checkpoint_at)
        assert first.checkpoint is not None
        # After the checkpoint: peers that join at or after it, and leaves of open peers at or
        # after it (nothing before the checkpoint changes, or the recompute would start over).
        spans += [
            (v, checkpoint_at + s * 1_000_000, None if o else _us(s + d)) for v, s, d, o in later
        ]
        closing = data.draw(st.lists(st.integers(0, 300), max_size=len(spans)), label="leaves")
        for i, delay in enumerate(closing):
            user_id, joined, left = spans[i]
            if left is None:
                spans[i] = (user_id, joined, checkpoint_at + delay * 1_000_000)
        later_now = now + data.draw(st.integers(0, 300)) * 1_000_000
        carry_to = max(checkpoint_at, later_now - later_now % 60_000_000 - 60_000_000)
        window = [s for s in spans if s[2] is None or s[2] >= checkpoint_at]
        unique = len({user_id for user_id, _, _ in spans})
        carried = stats_of(
            window,
            start=start,
            end=None,
            now=later_now,
            since=first.checkpoint,
            unique=unique,
            carry_to=carry_to,
        )
        full = stats_of(spans, start=start, end=None, now=later_now, carry_to=carry_to)
        assert carried.checkpoint == full.checkpoint
        assert (carried.current, carried.peak, carried.unique) == (
            full.current,
            full.peak,
            full.unique,
        )
        assert carried.total_watch_seconds == full.total_watch_seconds
        assert carried.average_watch_seconds == full.average_watch_seconds
        since = instant(checkpoint_at)
        assert carried.per_minute == [(m, v) for m, v in full.per_minute if m >= since]

    def test_a_leave_before_its_join_is_no_time_connected(self) -> None:
        spans: list[Span] = [("a", _us(60), _us(30)), ("b", _us(0), _us(100))]
        stats = stats_of(spans, start=_us(0), end=None, now=_us(200))
        assert (stats.peak, stats.unique, stats.total_watch_seconds) == (1, 2, 100.0)
