"""The pure chart core: one circle per reading, 7-day means, percentile slots, range shares."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.dashboard import charts

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, tzinfo=TZ)
BP_LABELS = charts.BpLabels("BP", "sys", "dia", "mean", "thr", "empty")
AGP_LABELS = charts.AgpLabels("AGP", "median", "25-75", "5-95", "target", "empty")
SVG = "{http://www.w3.org/2000/svg}"


def _circles(svg: str, cls: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [c for c in root.iter(f"{SVG}circle") if cls in c.get("class", "").split()]


def test_bp_chart_draws_each_reading_and_the_thresholds() -> None:
    points = [
        charts.BpPoint(START + timedelta(hours=12 * i), 130 + i, 80 + i % 5) for i in range(20)
    ]
    svg = charts.bp_chart(
        points, start=START, end=START + timedelta(days=14),
        systolic_threshold_mmhg=135, diastolic_threshold_mmhg=85, labels=BP_LABELS,
    )  # fmt: skip
    assert len(_circles(svg, "sys")) == 20
    assert len(_circles(svg, "dia")) == 20
    root = ET.fromstring(svg)
    thresholds = [ln for ln in root.iter(f"{SVG}line") if "thr" in ln.get("class", "")]
    assert len(thresholds) == 2
    assert {t.findtext(f"{SVG}title") for t in thresholds} == {"thr 135 mmHg", "thr 85 mmHg"}


def test_seven_day_means_use_the_day_and_the_six_before() -> None:
    points = [charts.BpPoint(START + timedelta(days=d, hours=8), 100 + d, 70) for d in range(10)]
    means = charts.rolling_means_7d(points)
    assert len(means) == 10
    assert means[0][1] == 100
    assert means[6][1] == pytest.approx(sum(range(100, 107)) / 7)
    assert means[9][1] == pytest.approx(sum(range(103, 110)) / 7)


def test_agp_percentiles_per_slot_and_one_circle_per_reading() -> None:
    points = [
        charts.GlucosePoint(START + timedelta(days=d, hours=7, minutes=d), 5.0 + d / 10)
        for d in range(10)
    ] + [charts.GlucosePoint(START + timedelta(days=d, hours=13), 9.0) for d in range(3)]
    slots = charts.agp_slots(points)
    assert slots[3] is not None  # 06:00-08:00 has 10 readings
    centre, qs = slots[3]
    assert centre == 7.0
    assert qs[2] == pytest.approx(5.45)
    assert slots[6] is None  # 3 readings: too few for a band
    svg = charts.agp_chart(
        points, target_low=3.9, target_high=10.0, unit="mmol/L", labels=AGP_LABELS
    )
    assert len(_circles(svg, "pt")) == 13


def test_range_shares_count_below_in_and_above() -> None:
    shares = charts.range_shares([3.0, 3.9, 5.0, 10.0, 10.1, 12.0], 3.9, 10.0)
    assert (shares.below, shares.in_range, shares.above) == (1, 3, 2)
    assert shares.percent(shares.in_range) == 50


def test_empty_charts_say_so_and_text_is_escaped() -> None:
    labels = charts.BpLabels("<b>", "s", "d", "m", "t", "nothing & none")
    svg = charts.bp_chart(
        [], start=START, end=START + timedelta(days=1),
        systolic_threshold_mmhg=135, diastolic_threshold_mmhg=85, labels=labels,
    )  # fmt: skip
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == "<b>"
    assert "nothing &amp; none" in svg
