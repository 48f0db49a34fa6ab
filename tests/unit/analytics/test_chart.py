"""The viewers-over-time SVG: well-formed, accessible, escaped, scaled, thinned."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from livestage.analytics.chart import (
    MARKER_LIMIT,
    viewers_chart,
    x_label_minutes,
    x_label_step,
    y_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def series(*values: int, start: datetime = T0) -> list[tuple[datetime, int]]:
    return [(start + timedelta(minutes=i), v) for i, v in enumerate(values)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def x_labels(root: ET.Element) -> list[str]:
    (axis,) = by_class(root, "x-axis")
    return texts(axis)


def y_labels(root: ET.Element) -> list[str]:
    (axis,) = by_class(root, "y-axis")
    return texts(axis)


def line_points(root: ET.Element) -> list[tuple[float, float]]:
    (line,) = by_class(root, "chart-line")
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", line.get("d", ""))]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


class TestStructure:
    def test_an_accessible_svg_with_title_description_axes_line_and_area(self) -> None:
        root = parse(viewers_chart(series(0, 1, 2, 2, 1), title="Viewers of Friday jam"))
        assert root.tag == f"{SVG}svg"
        assert root.get("role") == "img"
        assert root.get("viewBox") == "0 0 720 260"
        title_id, desc_id = (root.get("aria-labelledby") or "").split()
        title = root.find(f"{SVG}title")
        desc = root.find(f"{SVG}desc")
        assert title is not None and desc is not None
        assert (title.get("id"), desc.get("id")) == (title_id, desc_id)
        assert title.text == "Viewers of Friday jam"
        assert desc.text == (
            "Concurrent viewers per minute, 5 minutes from 2026-11-21 12:00 to 12:04 UTC. "
            "Peak: 2 viewers at 12:02 UTC; last minute: 1 viewer."
        )
        assert [t.text for t in by_class(root, "chart-title")] == ["Viewers of Friday jam"]
        assert x_labels(root) == ["12:00", "12:01", "12:02", "12:03", "12:04"]
        assert y_labels(root) == ["0", "1", "2"]
        assert len(by_class(root, "chart-area")) == 1
        assert len(line_points(root)) == 5
        assert len(list(root.iter(f"{SVG}circle"))) == 5 + 1  # each point, plus the peak mark
        tips = [t.text for c in by_class(root, "chart-points")[0] for t in c]
        assert tips[2] == "12:02 UTC: 2 viewers"
        assert tips[4] == "12:04 UTC: 1 viewer"

    def test_the_peak_is_marked_with_its_value(self) -> None:
        root = parse(viewers_chart(series(1, 4, 7, 3)))
        (peak,) = by_class(root, "chart-max")
        assert peak.get("data-value") == "7"
        assert texts(peak) == ["7"]
        assert y_labels(root) == ["0", "2", "4", "6", "8"]

    def test_ids_are_namespaced_by_chart_id(self) -> None:
        root = parse(viewers_chart(series(1, 2), chart_id="stream-42"))
        assert root.get("id") == "stream-42"
        assert root.get("aria-labelledby") == "stream-42-title stream-42-desc"

    def test_input_order_and_naive_datetimes_do_not_matter(self) -> None:
        naive = [(T0.replace(tzinfo=None) + timedelta(minutes=i), i) for i in (2, 0, 1)]
        assert viewers_chart(naive) == viewers_chart(series(0, 1, 2))

    def test_minute_labels_are_utc(self) -> None:
        from zoneinfo import ZoneInfo

        paris = [(m.astimezone(ZoneInfo("Europe/Paris")), v) for m, v in series(1, 2)]
        assert x_labels(parse(viewers_chart(paris))) == ["12:00", "12:01"]


class TestEscaping:
    def test_title_and_id_are_escaped(self) -> None:
        hostile = "</title><script>alert(\"x\")</script> & 'co'"
        svg = viewers_chart(series(1, 2), title=hostile, chart_id='a" onload="alert(1)')
        assert "<script>" not in svg
        assert 'onload="alert(1)"' not in svg
        root = parse(svg)  # still well-formed
        title = root.find(f"{SVG}title")
        assert title is not None and title.text == hostile
        assert [t.text for t in by_class(root, "chart-title")] == [hostile]
        assert root.get("id") == 'a" onload="alert(1)'
        assert root.get("onload") is None


class TestEmpty:
    def test_no_points_draws_an_empty_frame_with_a_message(self) -> None:
        root = parse(viewers_chart([]))
        assert root.get("data-points") == "0"
        assert [t.text for t in by_class(root, "chart-empty")] == ["No viewer data yet"]
        desc = root.find(f"{SVG}desc")
        assert desc is not None and desc.text == "No viewers were recorded for this stream yet."
        assert by_class(root, "chart-line") == by_class(root, "chart-max") == []
        assert y_labels(root) == ["0", "1"]

    def test_one_point_is_a_dot_in_the_middle_with_its_label(self) -> None:
        root = parse(viewers_chart(series(3), width=400))
        assert by_class(root, "chart-line") == []
        (peak,) = by_class(root, "chart-max")
        circle = peak.find(f"{SVG}circle")
        assert circle is not None
        assert float(circle.get("cx", "0")) == pytest.approx((44 + 400 - 24) / 2)
        assert texts(peak) == ["3"]
        assert x_labels(root) == ["12:00"]

    def test_all_zero_viewers_still_scales(self) -> None:
        root = parse(viewers_chart(series(0, 0, 0)))
        assert y_labels(root) == ["0", "1"]
        assert {y for _, y in line_points(root)} == {260 - 34}
        assert texts(by_class(root, "chart-max")[0]) == ["0"]


class TestScaling:
    @pytest.mark.parametrize(
        ("maximum", "ticks"),
        [
            (0, [0, 1]),
            (1, [0, 1]),
            (2, [0, 1, 2]),
            (5, [0, 2, 4, 6]),
            (10, [0, 5, 10]),
            (37, [0, 10, 20, 30, 40]),
            (100, [0, 50, 100]),
            (12_345, [0, 5000, 10000, 15000]),
        ],
    )
    def test_y_ticks_are_nice_integers_covering_the_maximum(
        self, maximum: int, ticks: list[int]
    ) -> None:
        assert y_ticks(maximum) == ticks

    def test_values_map_linearly_onto_the_plot(self) -> None:
        root = parse(viewers_chart(series(0, 5, 10), width=720, height=260))
        (left, bottom), (middle, half), (right, top) = line_points(root)
        assert (left, right, middle) == (44, 720 - 24, pytest.approx((44 + 696) / 2))
        assert (bottom, top) == (260 - 34, 48)
        assert half == pytest.approx((bottom + top) / 2)

    def test_x_positions_follow_time_even_with_gaps(self) -> None:
        gappy = [(T0, 1), (T0 + timedelta(minutes=1), 1), (T0 + timedelta(minutes=4), 1)]
        xs = [x for x, _ in line_points(parse(viewers_chart(gappy)))]
        assert xs[1] - xs[0] == pytest.approx((xs[2] - xs[0]) / 4)


class TestThinning:
    def test_label_steps(self) -> None:
        assert x_label_step(5, 10) == 1
        assert x_label_step(9, 10) == 1
        assert x_label_step(10, 10) == 2
        assert x_label_step(60, 10) == 10
        assert x_label_step(8 * 60, 10) == 60
        assert x_label_step(3 * 1440, 10) == 720
        assert x_label_step(30 * 1440, 10) == 4 * 1440

    def test_long_streams_get_few_labels_on_round_times(self) -> None:
        start = datetime(2026, 11, 21, 11, 47, tzinfo=UTC)
        long = series(*([3] * 600), start=start)  # 10 hours
        root = parse(viewers_chart(long))
        labels = x_labels(root)
        assert labels == ["12:00", "13:00", "14:00", "15:00", "16:00", "17:00", "18:00",
                          "19:00", "20:00", "21:00"]  # fmt: skip
        assert by_class(root, "chart-points") == []  # no dot per minute at this length
        assert len(line_points(root)) == 600
        assert MARKER_LIMIT < 600

    def test_multi_day_streams_are_labelled_by_date(self) -> None:
        labels = x_label_minutes(T0, T0 + timedelta(days=12), 8)
        assert all(m.hour == 0 and m.minute == 0 for m in labels)
        assert len(labels) <= 8
        root = parse(viewers_chart([(T0, 1), (T0 + timedelta(days=12), 2)]))
        labels_shown = x_labels(root)
        assert len(labels_shown) >= 2
        assert all(re.fullmatch(r"1[12]-\d\d", label) for label in labels_shown), labels_shown

    def test_labels_never_exceed_the_maximum(self) -> None:
        for minutes in (1, 7, 11, 59, 61, 200, 999, 5000, 50_000):
            for limit in (2, 5, 10):
                labels = x_label_minutes(T0, T0 + timedelta(minutes=minutes), limit)
                assert 1 <= len(labels) <= limit, (minutes, limit)
