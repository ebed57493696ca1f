"""Server-rendered SVG charts for the dashboard (pure: data and labels in, markup out).

No I/O and no clock: readings arrive as values with their *local* time (the patient's time
zone, converted by the adapter), labels arrive translated. Every reading is drawn as circles
of class `pt` (a cuff reading as one `pt sys` and one `pt dia`), so a browser test can count
them.

- Blood pressure over time: systolic and diastolic points, the 7-day mean of all readings
  (the AHA/AMA 2020 home protocol, docs/clinical-rules.md section 4) at the end of each day
  with readings, and the patient's home thresholds as dashed lines.
- Glucose as an ambulatory glucose profile (Battelino et al. 2019): every reading placed by its
  time of day over one 24-hour axis, with the median and the 25-75 % and 5-95 % bands per
  two-hour slot where a slot holds enough readings, and the target range shaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Final

import numpy as np

WIDTH: Final = 720
HEIGHT: Final = 260
LEFT: Final = 48
RIGHT: Final = 16
TOP: Final = 16
BOTTOM: Final = 32
SLOT_H: Final = 2  # AGP slot width in hours (fingerstick data is sparse)
MIN_SLOT_READINGS: Final = 5  # fewer readings in a slot: no percentile band there
PERCENTILES: Final = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass(frozen=True, slots=True)
class BpPoint:
    """One cuff reading at its local time."""

    at_local: datetime
    systolic_mmhg: float
    diastolic_mmhg: float


@dataclass(frozen=True, slots=True)
class GlucosePoint:
    """One numeric glucose reading at its local time, in the unit the chart shows."""

    at_local: datetime
    value: float


@dataclass(frozen=True, slots=True)
class BpLabels:
    title: str
    systolic: str
    diastolic: str
    mean_7d: str
    threshold: str
    empty: str


@dataclass(frozen=True, slots=True)
class AgpLabels:
    title: str
    median: str
    band_25_75: str
    band_5_95: str
    target: str
    empty: str


@dataclass(frozen=True, slots=True)
class RangeShares:
    """How many numeric readings fall below, in and above the target range."""

    below: int
    in_range: int
    above: int

    @property
    def total(self) -> int:
        return self.below + self.in_range + self.above

    def percent(self, count: int) -> int:
        """`count` as a whole percentage of the total (0 for no readings)."""
        return round(100 * count / self.total) if self.total else 0


def range_shares(values: Sequence[float], low: float, high: float) -> RangeShares:
    """Counts below `low`, within [low, high], above `high` (values in one unit)."""
    below = sum(1 for v in values if v < low)
    above = sum(1 for v in values if v > high)
    return RangeShares(below, len(values) - below - above, above)


def rolling_means_7d(points: Sequence[BpPoint]) -> list[tuple[datetime, float, float]]:
    """At the end of each local day with readings, the mean of that day's and the six days
    before's readings (systolic, diastolic): the AHA/AMA 2020 home average, day by day."""
    if not points:
        return []
    ordered = sorted(points, key=lambda p: p.at_local)
    days = sorted({p.at_local.date() for p in ordered})
    out = []
    for day in days:
        window = [p for p in ordered if timedelta(0) <= day - p.at_local.date() < timedelta(7)]
        end = datetime.combine(day, datetime.max.time(), tzinfo=ordered[0].at_local.tzinfo)
        out.append(
            (
                end.replace(microsecond=0),
                sum(p.systolic_mmhg for p in window) / len(window),
                sum(p.diastolic_mmhg for p in window) / len(window),
            )
        )
    return out


def agp_slots(points: Sequence[GlucosePoint]) -> list[tuple[float, tuple[float, ...]] | None]:
    """Per two-hour slot of the day: (slot centre in hours, the 5/25/50/75/95th percentiles),
    or None where the slot has fewer than `MIN_SLOT_READINGS` readings."""
    slots: list[list[float]] = [[] for _ in range(24 // SLOT_H)]
    for p in points:
        hour = p.at_local.hour + p.at_local.minute / 60
        slots[int(hour // SLOT_H)].append(p.value)
    out: list[tuple[float, tuple[float, ...]] | None] = []
    for i, values in enumerate(slots):
        if len(values) < MIN_SLOT_READINGS:
            out.append(None)
            continue
        qs = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
        out.append((i * SLOT_H + SLOT_H / 2, tuple(float(q) for q in qs)))
    return out


@dataclass(frozen=True, slots=True)
class _Scale:
    lo: float
    hi: float
    px_lo: float
    px_hi: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return round(self.px_lo + (value - self.lo) / span * (self.px_hi - self.px_lo), 1)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 20 or value == int(value) else f"{value:.1f}"


def _frame(title: str, label_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{label_id}" class="chart">',
        f'<title id="{label_id}">{escape(title)}</title>',
    ]


def _y_axis(parts: list[str], y: _Scale, ticks: Sequence[float]) -> None:
    for t in ticks:
        py = y(t)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py}" y2="{py}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{py + 4}" text-anchor="end">{_fmt(t)}</text>'
        )


def _empty(parts: list[str], text: str) -> str:
    parts.append(
        f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
        f"{escape(text)}</text></svg>"
    )
    return "".join(parts)


def bp_chart(
    points: Sequence[BpPoint],
    *,
    start: datetime,
    end: datetime,
    systolic_threshold_mmhg: float,
    diastolic_threshold_mmhg: float,
    labels: BpLabels,
) -> str:
    """Blood pressure over [start, end] (local times) as SVG markup."""
    parts = _frame(labels.title, "bp-title")
    if not points:
        return _empty(parts, labels.empty)
    values = [v for p in points for v in (p.systolic_mmhg, p.diastolic_mmhg)]
    lo = min(40.0, min(values) - 10)
    hi = max(200.0, max(values) + 10)
    x = _Scale(start.timestamp(), end.timestamp(), LEFT, WIDTH - RIGHT)
    y = _Scale(lo, hi, HEIGHT - BOTTOM, TOP)
    _y_axis(parts, y, _nice_ticks(lo, hi))
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while day < end:
        px = x(day.timestamp())
        parts.append(
            f'<text class="tick" x="{px}" y="{HEIGHT - 10}" text-anchor="middle">{day:%d}</text>'
        )
        day += timedelta(days=2)
    for value, name, cls in (
        (systolic_threshold_mmhg, labels.threshold, "thr sys"),
        (diastolic_threshold_mmhg, labels.threshold, "thr dia"),
    ):
        py = y(value)
        parts.append(
            f'<line class="{cls}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py}" y2="{py}">'
            f"<title>{escape(name)} {_fmt(value)} mmHg</title></line>"
        )
    means = rolling_means_7d(points)
    for values_mmhg, cls in (
        ([m[1] for m in means], "mean sys"),
        ([m[2] for m in means], "mean dia"),
    ):
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(m[0].timestamp())},{y(v)}"
            for i, (m, v) in enumerate(zip(means, values_mmhg, strict=True))
        )
        parts.append(
            f'<path class="{cls}" d="{path}"><title>{escape(labels.mean_7d)}</title></path>'
        )
    for p in sorted(points, key=lambda q: q.at_local):
        px = x(p.at_local.timestamp())
        when = f"{p.at_local:%Y-%m-%d %H:%M}"
        reading = f"{_fmt(p.systolic_mmhg)}/{_fmt(p.diastolic_mmhg)} mmHg"
        parts.append(
            f'<g class="reading"><line class="stem" x1="{px}" x2="{px}" '
            f'y1="{y(p.systolic_mmhg)}" y2="{y(p.diastolic_mmhg)}"/>'
            f'<circle class="pt sys" cx="{px}" cy="{y(p.systolic_mmhg)}" r="3"/>'
            f'<circle class="pt dia" cx="{px}" cy="{y(p.diastolic_mmhg)}" r="3"/>'
            f"<title>{when} {reading}</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def agp_chart(
    points: Sequence[GlucosePoint],
    *,
    target_low: float,
    target_high: float,
    unit: str,
    labels: AgpLabels,
) -> str:
    """Glucose by time of day (ambulatory glucose profile style) as SVG markup."""
    parts = _frame(labels.title, "agp-title")
    if not points:
        return _empty(parts, labels.empty)
    values = [p.value for p in points]
    lo = min(0.0, *values)
    hi = max(target_high * 2, max(values) * 1.05)
    x = _Scale(0.0, 24.0, LEFT, WIDTH - RIGHT)
    y = _Scale(lo, hi, HEIGHT - BOTTOM, TOP)
    parts.append(
        f'<rect class="target" x="{LEFT}" y="{y(target_high)}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{round(y(target_low) - y(target_high), 1)}"><title>{escape(labels.target)} '
        f"{_fmt(target_low)}-{_fmt(target_high)} {escape(unit)}</title></rect>"
    )
    _y_axis(parts, y, _nice_ticks(lo, hi))
    for hour in range(0, 25, 3):
        parts.append(
            f'<text class="tick" x="{x(hour)}" y="{HEIGHT - 10}" text-anchor="middle">'
            f"{hour:02d}:00</text>"
        )
    slots = [s for s in agp_slots(points) if s is not None]
    for (low_i, high_i), cls, name in (
        ((0, 4), "band outer", labels.band_5_95),
        ((1, 3), "band inner", labels.band_25_75),
    ):
        if len(slots) >= 2:
            upper = [f"{x(c)},{y(q[high_i])}" for c, q in slots]
            lower = [f"{x(c)},{y(q[low_i])}" for c, q in reversed(slots)]
            parts.append(
                f'<polygon class="{cls}" points="{" ".join(upper + lower)}">'
                f"<title>{escape(name)}</title></polygon>"
            )
    if len(slots) >= 2:
        median = " ".join(
            f"{'M' if i == 0 else 'L'}{x(c)},{y(q[2])}" for i, (c, q) in enumerate(slots)
        )
        parts.append(
            f'<path class="median" d="{median}"><title>{escape(labels.median)}</title></path>'
        )
    for p in sorted(points, key=lambda q: q.at_local):
        of_day_h = p.at_local.hour + p.at_local.minute / 60 + p.at_local.second / 3600
        state = "low" if p.value < target_low else "high" if p.value > target_high else "in"
        parts.append(
            f'<circle class="pt {state}" cx="{x(of_day_h)}" cy="{y(p.value)}" r="2.5">'
            f"<title>{p.at_local:%Y-%m-%d %H:%M} {_fmt(p.value)} {escape(unit)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
