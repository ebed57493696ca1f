"""The pure generators: reproducible per seed, and physiologically shaped as documented."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime

from firmware_sims.physiology_bp import BloodPressureParams, circadian_factor, plan_blood_pressure
from firmware_sims.physiology_glucose import (
    DiabetesType,
    GlucoseModel,
    GlucoseParams,
    iso_15197_limit_mg_dl,
    meter_reading,
    plan_glucose,
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def test_meter_error_meets_iso_15197_2013_on_a_large_sample() -> None:
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")  # reproduce a failure with this seed
    rng = random.Random(seed)
    references = [rng.uniform(30, 450) for _ in range(20_000)]
    within = [
        abs(meter_reading(ref, rng) - ref) <= iso_15197_limit_mg_dl(ref) + 0.5  # whole mg/dL
        for ref in references
    ]
    assert sum(within) / len(within) >= 0.95
    errors = [meter_reading(200.0, rng) - 200.0 for _ in range(5_000)]
    assert abs(statistics.fmean(errors)) < 1.0  # unbiased


def test_plans_are_reproducible_for_a_seed_and_differ_between_seeds() -> None:
    params = GlucoseParams(diabetes_type=DiabetesType.T1, readings_per_day=4)
    one = plan_glucose(params, seed=5, start_utc=START, days=7, utc_offset_min=60)
    again = plan_glucose(params, seed=5, start_utc=START, days=7, utc_offset_min=60)
    other = plan_glucose(params, seed=6, start_utc=START, days=7, utc_offset_min=60)
    assert one == again
    assert one != other
    assert len(one) == 28
    assert all(a.at_utc <= b.at_utc for a, b in itertools.pairwise(one))


def test_dawn_phenomenon_meals_and_forced_hypos_shape_the_day() -> None:
    model = GlucoseModel(
        GlucoseParams(fasting_mg_dl=120, dawn_rise_mg_dl=25, day_sd_mg_dl=0, hypo_days=(1,)),
        seed=1,
    )
    assert model.true_mg_dl(0, 6.25) > model.true_mg_dl(0, 3.0) + 20  # dawn rise
    assert model.true_mg_dl(0, 13.75) > model.true_mg_dl(0, 12.4) + 50  # lunch excursion
    assert model.true_mg_dl(1, 11.9) < 54  # the forced level-2 episode
    assert model.true_mg_dl(1, 15.0) > 100  # and it resolves


def test_bp_dips_at_night_surges_in_the_morning_and_trends() -> None:
    assert circadian_factor(3.0, 15) == 0.85
    assert circadian_factor(14.0, 15) == 1.0
    params = BloodPressureParams(
        systolic_mmhg=120, noise_sd_mmhg=0.1, trend_mmhg_per_day=1.5, trend_start_day=0
    )
    plan = plan_blood_pressure(params, seed=3, start_utc=START, days=14, utc_offset_min=0)
    first_week = [s.systolic_mmhg for s in plan[:28]]
    second_week = [s.systolic_mmhg for s in plan[28:]]
    assert statistics.fmean(second_week) - statistics.fmean(first_week) > 9  # ~7 days x 1.5


def test_white_coat_readings_are_the_first_of_a_session_and_higher() -> None:
    params = BloodPressureParams(
        systolic_mmhg=118, white_coat_prob=0.5, white_coat_mmhg=15, noise_sd_mmhg=0.1
    )
    plan = plan_blood_pressure(params, seed=9, start_utc=START, days=14, utc_offset_min=0)
    coats = [s for s in plan if s.white_coat]
    plain = [s for s in plan if not s.white_coat]
    assert 5 < len(coats) < 25
    assert statistics.fmean(s.systolic_mmhg for s in coats) > (
        statistics.fmean(s.systolic_mmhg for s in plain) + 10
    )
