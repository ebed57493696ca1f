"""The compiled glucose window pass equals the numpy reference (whole-array kernels)."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.rules import plausibility
from alerts.rules.catalog import RULES_BY_ID, FloatArray
from alerts.rules.columns import KindCode, MealCode, ReadingColumns, SpecialCode, build_columns
from alerts.rules.glucose import glucose_rows
from alerts.rules.result import BoolArray
from alerts.rules.segments import distinct_days, last_row, mean_and_cv, per_patient_count
from alerts.rules.window_pass import segment_starts, shared_window_stats, window_stats

NOW_S = 1_772_352_000
DAY_S = 86_400


def _columns(seed: int, n_patients: int = 40):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n = 4000
    t = NOW_S - rng.integers(-2 * DAY_S, 20 * DAY_S, n)  # some rows after now
    kind = rng.choice([KindCode.GLUCOSE, KindCode.GLUCOSE, KindCode.BLOOD_PRESSURE], n)
    special = rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3], n)
    glucose = np.where(special == 0, rng.uniform(1.5, 20.0, n), np.nan)
    glucose[rng.random(n) < 0.05] = 3.885  # on the threshold
    return build_columns(
        [f"p{i}" for i in rng.integers(0, n_patients, n)], t, kind,
        glucose_mmol_l=glucose, glucose_special=special,
        meal=rng.choice([m.value for m in MealCode], n),
        control_solution=rng.random(n) < 0.05,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fasting", [False, True])
def test_window_pass_equals_the_numpy_reference(seed: int, fasting: bool) -> None:
    cols = _columns(seed)
    rng = np.random.default_rng(seed + 100)
    n_pat = cols.n_patients
    p = cols.patient
    from_s = NOW_S - rng.choice([7.0, 14.0, 10.5], n_pat) * DAY_S
    low = rng.choice([3.885, 4.0], n_pat)
    high = rng.choice([10.0, 9.0], n_pat)
    t, v = cols.measured_at_s, cols.glucose_mmol_l
    numeric = cols.glucose_special == SpecialCode.NONE
    in_window = glucose_rows(cols, NOW_S) & (t >= from_s[p])
    if fasting:
        in_window &= (cols.meal == MealCode.FASTING) & numeric
    got = window_stats(cols, NOW_S, from_s=from_s, low=low, high=high, fasting=fasting)
    with np.errstate(invalid="ignore"):
        in_range = (v >= low[p]) & (v <= high[p])
        below = (v < low[p]) | (cols.glucose_special == SpecialCode.LO)
    m, mean, cv = mean_and_cv(p, v, in_window & numeric, n_pat)
    assert np.array_equal(got.evidence, in_window)
    assert np.array_equal(got.count, per_patient_count(p, in_window, n_pat))
    assert np.array_equal(got.newest, last_row(p, in_window, n_pat))
    assert np.array_equal(got.days, distinct_days(p, t // DAY_S, in_window, n_pat))
    assert np.array_equal(got.in_range, per_patient_count(p, in_window & in_range, n_pat))
    assert np.array_equal(got.below, per_patient_count(p, in_window & below, n_pat))
    assert np.array_equal(got.numeric, m)
    # The same additions in the same order: the same floats, not merely close ones.
    assert np.array_equal(got.mean, mean, equal_nan=True)
    assert np.array_equal(got.cv, cv, equal_nan=True)


def test_rules_with_one_window_share_one_pass_and_others_get_their_own() -> None:
    cols = _columns(1)
    starts = segment_starts(cols)
    scratch: dict[str, object] = {}
    window = NOW_S - 14.0 * DAY_S

    def get(low: float | None, high: float | None, from_s: float = window):  # type: ignore[no-untyped-def]
        return shared_window_stats(
            cols, NOW_S, from_s=from_s, low=low, high=high, starts=starts, scratch=scratch
        )

    tir = get(3.885, 10.0)
    assert get(3.885, None) is tir  # the below-range counts at the same threshold
    assert get(None, None) is tir  # mean and CV only
    other = get(4.0, None)
    assert other is not tir
    assert np.array_equal(
        other.below, window_stats(cols, NOW_S, from_s=window, low=4.0, high=np.inf).below
    )
    assert get(None, None, NOW_S - 7.0 * DAY_S) is not tir


def _vital_columns(rng: np.random.Generator, n: int, n_patients: int) -> ReadingColumns:
    """Readings of every kind over 9 days, values spread across and beyond the plausibility
    limits, some control solution."""
    return build_columns(
        [f"p{i}" for i in rng.integers(0, n_patients, n)], NOW_S - rng.integers(0, 9 * DAY_S, n),
        rng.choice([k.value for k in KindCode], n),
        glucose_mmol_l=np.where(rng.random(n) < 0.5, rng.uniform(0.0, 40.0, n), np.nan),
        systolic_mmhg=np.where(rng.random(n) < 0.5, rng.uniform(20.0, 330.0, n), np.nan),
        diastolic_mmhg=np.where(rng.random(n) < 0.5, rng.uniform(10.0, 200.0, n), np.nan),
        heart_rate_per_min=np.where(rng.random(n) < 0.3, rng.uniform(10.0, 300.0, n), np.nan),
        spo2_pct=np.where(rng.random(n) < 0.3, rng.uniform(30.0, 100.0, n), np.nan),
        body_temperature_c=np.where(rng.random(n) < 0.3, rng.uniform(30.0, 45.0, n), np.nan),
        body_weight_kg=np.where(rng.random(n) < 0.3, rng.uniform(10.0, 350.0, n), np.nan),
        control_solution=rng.random(n) < 0.1,
    )  # fmt: skip


def _numpy_implausible(cols: ReadingColumns, params: dict[str, FloatArray]) -> BoolArray:
    """The plausibility flags as plain numpy comparisons (the reference)."""
    p = cols.patient
    g, s, d = cols.glucose_mmol_l, cols.systolic_mmhg, cols.diastolic_mmhg
    with np.errstate(invalid="ignore"):
        expected = (g < params["glucose_min_mmol_l"][p]) | (g > params["glucose_max_mmol_l"][p])
        expected |= (s > params["systolic_max_mmhg"][p]) | (s < params["systolic_min_mmhg"][p])
        expected |= (d < params["diastolic_min_mmhg"][p]) | (d >= s)
        expected |= s - d < params["min_pulse_pressure_mmhg"][p]
        for _, column, limit, below in plausibility._VITAL_LIMITS:
            v = getattr(cols, column)
            expected |= (v < params[limit][p]) if below else (v > params[limit][p])
    expected &= ~cols.control_solution
    return expected


def _catalogue_limits(cols: ReadingColumns) -> dict[str, FloatArray]:
    rule = RULES_BY_ID[plausibility.RULE_ID]
    return {k: np.full(cols.n_patients, v) for k, v in rule.params.items()}


@pytest.mark.parametrize("seed", range(4))
def test_implausible_flags_equal_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cols = _vital_columns(rng, 3000, 30)
    params = _catalogue_limits(cols)
    params["systolic_max_mmhg"] = rng.choice([300.0, 250.0], cols.n_patients)  # per patient
    expected = _numpy_implausible(cols, params)
    assert expected.any()
    assert np.array_equal(plausibility.flag_implausible(cols, params).implausible, expected)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("per_patient", [False, True])
def test_implausible_flags_with_the_same_limits_for_everyone(seed: int, per_patient: bool) -> None:
    """The same limits for everyone, or a care plan's own limit for one patient: the flags
    equal the numpy comparisons over 20,000 rows of 50 patients."""
    rng = np.random.default_rng(seed)
    cols = _vital_columns(rng, 20_000, 50)
    params = _catalogue_limits(cols)
    if per_patient:
        params["min_pulse_pressure_mmhg"][3] = 25.0
    expected = _numpy_implausible(cols, params)
    assert expected.any() and not expected.all()
    assert np.array_equal(plausibility.flag_implausible(cols, params).implausible, expected)
