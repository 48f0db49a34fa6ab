"""Viewers over time as a self-contained, accessible inline SVG (a pure function, no I/O).

`viewers_chart(series)` takes the per-minute series [(minute, viewers), ...] and returns SVG
markup: a title and a description for assistive technology (`role="img"`), y ticks on "nice"
integers, x labels in UTC (`HH:MM`, or `MM-DD` once a label step is a day or more) thinned to fit
the width, the line with its area, and the peak marked and labelled with its value. Every piece
of text is escaped; styling is in attributes, so the markup needs no stylesheet.

Edge cases: no points renders the frame with "No viewer data yet"; one point renders a dot in
the middle; long streams keep at most `max_x_labels` labels, aligned to round UTC times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

NICE_MINUTE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
DAY_MINUTES = 1440
MARKER_LIMIT = 120  # beyond this many points the per-point dots (and their tooltips) are dropped

ACCENT = "#5b3df5"
MUTED = "#5f6470"
GRID = "#e3e5ea"
TEXT = "#1b1d22"

Point = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class Frame:
    """The SVG's size and the margins around the plot area (title above, labels left/below)."""

    width: int
    height: int
    left: int = 44
    right: int = 24
    top: int = 48
    bottom: int = 34

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:  # the baseline (value 0)
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:  # the top of the plot
        return float(self.top)


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    """Short, stable coordinates: one decimal, no trailing zeros."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def y_ticks(maximum: int, *, target: int = 4) -> list[int]:
    """Integer ticks from 0 to a "nice" top (>= maximum), about `target` intervals."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / target
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    top = math.ceil(maximum / step) * step
    return list(range(0, top + 1, step))


def x_label_step(span_minutes: int, max_labels: int) -> int:
    """The smallest round step (in minutes) that keeps the labels within `max_labels`."""
    max_labels = max(2, max_labels)
    for step in NICE_MINUTE_STEPS:
        if span_minutes // step + 1 <= max_labels:
            return step
    days = math.ceil(span_minutes / DAY_MINUTES / (max_labels - 1))
    return days * DAY_MINUTES


def x_label_minutes(start: datetime, end: datetime, max_labels: int) -> list[datetime]:
    """Label positions: every `step` minutes on round UTC times within [start, end]."""
    span = int((end - start).total_seconds() // 60)
    step = x_label_step(span, max_labels)
    epoch_minutes = math.ceil(start.timestamp() / 60)
    first = math.ceil(epoch_minutes / step) * step
    labels: list[datetime] = []
    minute = first
    while minute * 60 <= end.timestamp():
        labels.append(datetime.fromtimestamp(minute * 60, UTC))
        minute += step
    return labels or [start]


def _label(value: datetime, step_is_days: bool) -> str:
    return value.strftime("%m-%d" if step_is_days else "%H:%M")


def _summary(points: list[Point]) -> str:
    if not points:
        return "No viewers were recorded for this stream yet."
    start, end = points[0][0], points[-1][0]
    peak_at, peak = max(points, key=lambda p: p[1])
    same_day = start.date() == end.date()
    until = end.strftime("%H:%M") if same_day else end.strftime("%Y-%m-%d %H:%M")
    minutes = _plural(len(points), "minute")
    return (
        f"Concurrent viewers per minute, {minutes} from {start:%Y-%m-%d %H:%M} to {until} UTC. "
        f"Peak: {_plural(peak, 'viewer')} at {peak_at:%H:%M} UTC; "
        f"last minute: {_plural(points[-1][1], 'viewer')}."
    )


@dataclass(frozen=True, slots=True)
class Scale:
    """Data → SVG coordinates for one chart."""

    frame: Frame
    start: datetime
    span_seconds: float
    top: int  # the value drawn at the top of the plot

    def x(self, moment: datetime) -> float:
        f = self.frame
        if self.span_seconds <= 0:
            return (f.x0 + f.x1) / 2
        return f.x0 + (f.x1 - f.x0) * (moment - self.start).total_seconds() / self.span_seconds

    def y(self, value: int) -> float:
        f = self.frame
        return f.y0 - (f.y0 - f.y1) * value / self.top


def _y_axis(frame: Frame, ticks: list[int], scale: Scale) -> str:
    parts = ['<g class="y-axis" text-anchor="end">']
    for tick in ticks:
        y = _num(scale.y(tick))
        parts.append(
            f'<line x1="{_num(frame.x0)}" x2="{_num(frame.x1)}" y1="{y}" y2="{y}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{frame.left - 8}" y="{y}" dy="0.35em" fill="{MUTED}">{tick}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _x_axis(frame: Frame, points: list[Point], scale: Scale, max_labels: int | None) -> str:
    fit = max_labels or max(2, int((frame.x1 - frame.x0) // 64))
    labels = x_label_minutes(points[0][0], points[-1][0], fit)
    by_day = len(labels) > 1 and labels[1] - labels[0] >= timedelta(days=1)
    base, label_y = _num(frame.y0), _num(frame.y0 + 18)
    parts = [
        '<g class="x-axis" text-anchor="middle">',
        f'<line x1="{_num(frame.x0)}" x2="{_num(frame.x1)}" y1="{base}" y2="{base}" '
        f'stroke="{MUTED}" stroke-width="1"/>',
    ]
    for moment in labels:
        x = _num(scale.x(moment))
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="{base}" y2="{_num(frame.y0 + 4)}" stroke="{MUTED}"/>'
            f'<text x="{x}" y="{label_y}" fill="{MUTED}">{_text(_label(moment, by_day))}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _series(frame: Frame, points: list[Point], xy: list[tuple[float, float]]) -> str:
    parts = []
    if len(xy) > 1:
        line = " L ".join(f"{_num(x)} {_num(y)}" for x, y in xy)
        first_x, last_x, base = _num(xy[0][0]), _num(xy[-1][0]), _num(frame.y0)
        parts.append(
            f'<path class="chart-area" d="M {first_x} {base} L {line} L {last_x} {base} Z" '
            f'fill="{ACCENT}" fill-opacity="0.14" stroke="none"/>'
            f'<path class="chart-line" d="M {line}" fill="none" stroke="{ACCENT}" '
            'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    if len(points) <= MARKER_LIMIT:
        parts.append('<g class="chart-points">')
        for (moment, value), (x, y) in zip(points, xy, strict=True):
            tip = f"{moment:%H:%M} UTC: {_plural(value, 'viewer')}"
            parts.append(
                f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{ACCENT}">'
                f"<title>{_text(tip)}</title></circle>"
            )
        parts.append("</g>")
    return "".join(parts)


def _peak_mark(frame: Frame, points: list[Point], xy: list[tuple[float, float]]) -> str:
    peak = max(v for _, v in points)
    x, y = xy[next(i for i, (_, v) in enumerate(points) if v == peak)]
    anchor = "start" if x < frame.x0 + 24 else "end" if x > frame.x1 - 24 else "middle"
    return (
        f'<g class="chart-max" data-value="{peak}">'
        f'<circle cx="{_num(x)}" cy="{_num(y)}" r="5" fill="#fff" stroke="{ACCENT}" '
        'stroke-width="2"/>'
        f'<text class="chart-max-label" x="{_num(x)}" y="{_num(y - 10)}" '
        f'text-anchor="{anchor}" font-weight="600" fill="{TEXT}">{peak}</text></g>'
    )


def viewers_chart(
    series: Sequence[Point],
    *,
    title: str = "Viewers over time",
    chart_id: str = "viewers-chart",
    width: int = 720,
    height: int = 260,
    max_x_labels: int | None = None,
) -> str:
    """The series as an inline `<svg>` string (see the module docstring)."""
    frame = Frame(width=width, height=height)
    points = sorted(((_utc(minute), max(0, int(v))) for minute, v in series), key=lambda p: p[0])
    ident = _text(chart_id)
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="viewers-chart" id="{ident}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="system-ui, sans-serif" font-size="12" data-points="{len(points)}">',
        f'<title id="{ident}-title">{_text(title)}</title>',
        f'<desc id="{ident}-desc">{_text(_summary(points))}</desc>',
        f'<text class="chart-title" x="{frame.left}" y="22" font-size="15" font-weight="600" '
        f'fill="{TEXT}">{_text(title)}</text>',
        f'<text class="chart-caption" x="{_num(frame.x1)}" y="22" text-anchor="end" '
        f'fill="{MUTED}">times in UTC</text>',
    ]
    ticks = y_ticks(max((v for _, v in points), default=0))
    if not points:
        scale = Scale(frame, datetime.fromtimestamp(0, UTC), 0.0, ticks[-1])
        out.append(_y_axis(frame, ticks, scale))
        middle_x, middle_y = _num((frame.x0 + frame.x1) / 2), _num((frame.y0 + frame.y1) / 2)
        out.append(
            f'<text class="chart-empty" x="{middle_x}" y="{middle_y}" text-anchor="middle" '
            f'fill="{MUTED}">No viewer data yet</text></svg>'
        )
        return "".join(out)
    span = (points[-1][0] - points[0][0]).total_seconds()
    scale = Scale(frame, points[0][0], span, ticks[-1])
    xy = [(scale.x(moment), scale.y(value)) for moment, value in points]
    out.append(_y_axis(frame, ticks, scale))
    out.append(_x_axis(frame, points, scale, max_x_labels))
    out.append(_series(frame, points, xy))
    out.append(_peak_mark(frame, points, xy))
    out.append("</svg>")
    return "".join(out)
