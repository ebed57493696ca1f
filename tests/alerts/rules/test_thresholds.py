"""Each rule at and around its thresholds (defaults from the catalog, sources in README)."""

from __future__ import annotations

import pytest

from alerts.rules.segments import Status
from tests.alerts.rules.cases import NOW_S, D, H, bp, glucose, status_of

A, C, N = Status.ACTIVE, Status.CLEAR, Status.INSUFFICIENT


@pytest.mark.parametrize(
    ("value", "l2", "l1", "hyper"),
    [
        (2.9, A, C, C), (3.0, C, A, C), (3.8, C, A, C), (3.9, C, C, C), (10.0, C, C, C),
        (13.9, C, C, C), (14.0, C, C, A), ("LO", A, C, C), ("HI", C, C, A), ("NaN", C, C, C),
        # whole mg/dL meters (value / 18.016): "< 54" and "< 70" mg/dL exactly
        (53 / 18.016, A, C, C), (54 / 18.016, C, A, C), (69 / 18.016, C, A, C),
        (70 / 18.016, C, C, C), (250 / 18.016, C, C, C), (251 / 18.016, C, C, A),
    ],
)  # fmt: skip
def test_glucose_per_reading_thresholds(
    value: float | str, l2: Status, l1: Status, hyper: Status
) -> None:
    cols = glucose([value])
    assert status_of("glucose.hypo_l2", cols) == l2
    assert status_of("glucose.hypo_l1", cols) == l1
    assert status_of("glucose.hyper", cols) == hyper


def test_hysteresis_low_stays_open_until_the_clearing_threshold() -> None:
    assert status_of("glucose.hypo_l2", glucose([2.8, 3.5])) == A  # 3.5 < 3.9: not cleared
    assert status_of("glucose.hypo_l2", glucose([2.8, 3.9])) == C
    assert status_of("glucose.hyper", glucose([15.0, 12.5])) == A  # 12.5 >= 12.0: still open
    assert status_of("glucose.hyper", glucose([15.0, 11.9])) == C


def test_stale_low_never_fires() -> None:
    assert status_of("glucose.hypo_l2", glucose([2.5]), NOW_S + 24 * H) == C


def test_control_solution_and_ketone_are_not_glucose() -> None:
    from alerts.rules.columns import KindCode, build_columns

    cols = build_columns(
        ["p", "p"], [NOW_S - 60, NOW_S - 30], [KindCode.GLUCOSE, KindCode.KETONE],
        glucose_mmol_l=[1.5, 1.0], control_solution=[True, False],
    )  # fmt: skip
    assert status_of("glucose.hypo_l2", cols) == C


def _day_pattern(values: list[float], days: int = 14) -> list[float]:
    return values * days


def test_time_in_range_share_threshold_and_minimum_count() -> None:
    # 28 readings: 20 in range = 71.4 % (clear), 19 = 67.9 % (active); 27 readings: insufficient.
    in_range, out = [6.0] * 20, [11.0] * 8
    assert status_of("glucose.tir_14d", glucose(in_range + out, every_s=10 * H)) == C
    assert status_of("glucose.tir_14d", glucose([6.0] * 19 + [11.0] * 9, every_s=10 * H)) == A
    assert status_of("glucose.tir_14d", glucose([11.0] * 27, every_s=10 * H)) == N


def test_below_range_share() -> None:
    # 1 of 28 below 3.9 = 3.6 % (clear), 2 of 28 = 7.1 % (active)
    assert status_of("glucose.tbr_14d", glucose([3.8] + [6.0] * 27, every_s=10 * H)) == C
    assert status_of("glucose.tbr_14d", glucose([3.8, "LO"] + [6.0] * 26, every_s=10 * H)) == A


def test_cv_threshold() -> None:
    low_var = [5.0, 7.0] * 14  # CV about 0.18
    high_var = [3.0, 12.0] * 14  # CV about 0.62
    assert status_of("glucose.cv_14d", glucose(low_var, every_s=10 * H)) == C
    assert status_of("glucose.cv_14d", glucose(high_var, every_s=10 * H)) == A


def test_fasting_mean_needs_fasting_readings() -> None:
    from alerts.rules.columns import MealCode

    high = [7.5, 7.4, 7.3, 7.6]
    assert (
        status_of("glucose.fasting_mean_7d", glucose(high, every_s=D, meal=MealCode.FASTING)) == A
    )
    assert status_of("glucose.fasting_mean_7d", glucose(high, every_s=D)) == N
    ok = [6.0, 7.2, 7.2, 7.2]  # mean 6.9 <= 7.2
    assert status_of("glucose.fasting_mean_7d", glucose(ok, every_s=D, meal=MealCode.FASTING)) == C


def test_crisis_confirmed_cleared_pending_and_unconfirmed() -> None:
    t = NOW_S - 3 * H
    assert status_of("bp.crisis", bp([(180, 90), (181, 95)], [t, t + 120])) == A  # confirmed
    assert status_of("bp.crisis", bp([(179, 119), (150, 90)], [t, t + 120])) == C  # not severe
    assert status_of("bp.crisis", bp([(185, 90), (150, 90)], [t, t + 120])) == C  # cleared
    assert status_of("bp.crisis", bp([(150, 120)], [t])) == A  # nobody re-measured
    assert status_of("bp.crisis", bp([(150, 120)], [NOW_S - 300])) == C  # waiting for re-measure


def test_hypotension() -> None:
    t = NOW_S - H
    assert status_of("bp.hypotension", bp([(89, 70)], [t])) == A
    assert status_of("bp.hypotension", bp([(90, 60)], [t])) == C
    assert status_of("bp.hypotension", bp([(100, 59)], [t])) == A


def _protocol_days(
    sys_: float, dia: float, days: int, per_slot: int = 2
) -> tuple[list[tuple[float, float]], list[int]]:
    today = NOW_S - NOW_S % D
    pairs, times = [], []
    for d in range(days):
        for hour in (7, 19):
            for k in range(per_slot):
                at = today - (days - 1 - d) * D + hour * H + 60 * k
                if at <= NOW_S:
                    pairs.append((sys_, dia))
                    times.append(at)
    return pairs, times


@pytest.mark.parametrize(
    ("rule", "sys_", "dia", "days", "expected"),
    [
        ("bp.home_esh_7d", 135, 80, 7, A), ("bp.home_esh_7d", 134, 84, 7, C),
        ("bp.home_esh_7d", 140, 90, 3, N),  # 2 days left after day 1: too few readings
        ("bp.home_aha_ama_2020", 130, 70, 7, A), ("bp.home_aha_ama_2020", 129, 79, 7, C),
        ("bp.home_aha_ama_2020", 140, 90, 2, N),
        ("bp.home_china_2019", 136, 80, 3, A), ("bp.home_china_2019", 134, 84, 7, C),
        ("bp.home_china_2019", 140, 90, 2, N),
    ],
)  # fmt: skip
def test_home_protocols(rule: str, sys_: float, dia: float, days: int, expected: Status) -> None:
    pairs, times = _protocol_days(sys_, dia, days)
    assert status_of(rule, bp(pairs, times)) == expected


def test_esh_discards_day_one() -> None:
    high_day1, t1 = _protocol_days(200, 120, 7)
    pairs = [(200.0, 120.0)] * 4 + [(120.0, 70.0)] * (len(high_day1) - 4)
    # The ESH rule drops the first day (the only high one); AHA/AMA averages it in.
    assert status_of("bp.home_esh_7d", bp(pairs, t1)) == C
    assert status_of("bp.home_aha_ama_2020", bp(pairs, t1)) == A


def test_systolic_trend() -> None:
    times = [NOW_S - (13 - d) * D - H for d in range(14)]
    rising = [(120 + 1.5 * d, 80) for d in range(14)]
    flat = [(125 + (d % 2), 80) for d in range(14)]
    assert status_of("bp.trend_14d", bp(rising, times)) == A
    assert status_of("bp.trend_14d", bp(flat, times)) == C
    assert status_of("bp.trend_14d", bp(rising[-5:], times[-5:])) == N


def test_adherence_no_readings() -> None:
    cols = glucose([6.0])
    assert status_of("adherence.no_readings", cols, NOW_S + 2 * D) == C
    assert status_of("adherence.no_readings", cols, NOW_S + 4 * D) == A
