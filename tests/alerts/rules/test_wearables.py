"""Wearable rules at the kernels: sustained low SpO2, sustained tachycardia and bradycardia at
rest, fever, weight gain in heart failure, CGM time in ranges (time-weighted), and the
plausibility limits of the new kinds."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.engine.evaluate import (
    PatientProfile,
    PriorState,
    evaluate_all,
    evidence_for,
    no_prior_state,
)
from alerts.rules.catalog import RULES_BY_ID
from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode, build_columns
from alerts.rules.result import RuleResult
from alerts.rules.segments import Status
from alerts.rules.vitals import range_min, sustained
from tests.alerts.rules.cases import NOW_S, D, H

A, C, N = Status.ACTIVE, Status.CLEAR, Status.INSUFFICIENT
M = 60
NIGHT = NOW_S - NOW_S % D + 2 * H  # 02:00 UTC today, in the default rest window (NOW is 08:00)
NOON = NOW_S - NOW_S % D - 12 * H  # 12:00 UTC yesterday, outside it


def _result(cols: ReadingColumns, rule_id: str, now_s: int = NOW_S, **kw: object) -> RuleResult:
    out = evaluate_all(cols, now_s, prior=no_prior_state(), rules=[RULES_BY_ID[rule_id]], **kw)  # type: ignore[arg-type]
    return next(r for r in out if r.subject == "")


def _status(cols: ReadingColumns, rule_id: str, patient: str = "p", **kw: object) -> Status:
    result = _result(cols, rule_id, **kw)
    return Status(int(result.status[cols.patient_ids.index(patient)]))


def _minutes(start_s: int, n: int, step_s: int = M) -> list[int]:
    return [start_s + k * step_s for k in range(n)]


def spo2(values: Sequence[float], times: Sequence[int], patient: str = "p") -> ReadingColumns:
    n = len(values)
    return build_columns(
        [patient] * n, list(times), [KindCode.SPO2] * n, spo2_pct=list(values),
        reading_ref=[f"{patient}-s{i}" for i in range(n)],
    )  # fmt: skip


def heart(values: Sequence[float], times: Sequence[int]) -> ReadingColumns:
    n = len(values)
    return build_columns(
        ["p"] * n, list(times), [KindCode.HEART_RATE] * n, heart_rate_per_min=list(values),
        reading_ref=[f"h{i}" for i in range(n)],
    )  # fmt: skip


# ---- sustained runs ------------------------------------------------------------------------


def test_sustained_marks_the_row_at_which_a_run_has_lasted_long_enough() -> None:
    p = np.array([0, 0, 0, 0, 0, 1, 1], dtype=np.int64)
    t = np.array([0, 60, 120, 600, 660, 0, 60], dtype=np.int64)
    cond = np.array([1, 1, 1, 1, 1, 1, 1], dtype=bool)
    gap = np.full(7, 120.0)
    out = sustained(p, t, cond, max_gap_s=gap, min_s=np.full(7, 180.0), observation_s=gap / 2)
    # Patient 0: 0-180 s lasts 3 min at the third row; the gap of 480 s starts a new run;
    # patient 1's run does not continue patient 0's.
    assert out.tolist() == [False, False, True, False, False, False, False]


def test_range_min_matches_slices() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(80, 3, 200)
    start = rng.integers(0, 200, 500)
    stop = np.minimum(start + rng.integers(0, 40, 500), 200)
    expected = [values[a:b].min() if b > a else np.nan for a, b in zip(start, stop, strict=True)]
    np.testing.assert_array_equal(range_min(values, start, stop), expected)


# ---- SpO2 ----------------------------------------------------------------------------------


def test_spo2_below_90_for_five_minutes_fires_four_minutes_do_not() -> None:
    four = spo2([88] * 4, _minutes(NOW_S - H, 4))
    five = spo2([88] * 5, _minutes(NOW_S - H, 5))
    assert _status(four, "spo2.low_sustained") == C
    assert _status(five, "spo2.low_sustained") == A
    result = _result(five, "spo2.low_sustained")
    evidence = evidence_for(result, five, 0)
    assert evidence["reading_ids"] == ["p-s4"]  # the minute at which 5 minutes were reached
    assert evidence["thresholds"]["below_pct"] == 90.0  # type: ignore[index]


def test_spo2_a_normal_minute_in_between_breaks_the_run() -> None:
    values = [88, 88, 88, 95, 88, 88, 88]
    assert _status(spo2(values, _minutes(NOW_S - H, 7)), "spo2.low_sustained") == C


def test_spo2_two_low_spot_checks_ten_minutes_apart_fire_twenty_do_not() -> None:
    near = spo2([87, 88], [NOW_S - H, NOW_S - H + 10 * M])
    far = spo2([87, 88], [NOW_S - H, NOW_S - H + 20 * M])
    one = spo2([85], [NOW_S - H])
    assert _status(near, "spo2.low_sustained") == A
    assert _status(far, "spo2.low_sustained") == C
    assert _status(one, "spo2.low_sustained") == C


def test_spo2_clears_after_five_minutes_at_92_or_more() -> None:
    low = _minutes(NOW_S - 2 * H, 6)
    back = _minutes(NOW_S - H, 5)
    assert _status(spo2([87] * 6 + [93] * 4, low + back[:4]), "spo2.low_sustained") == A
    assert _status(spo2([87] * 6 + [93] * 5, low + back), "spo2.low_sustained") == C
    # 91 % is above the threshold but below the clearing level: the episode stays open.
    assert _status(spo2([87] * 6 + [91] * 10, low + _minutes(NOW_S - H, 10)),
                   "spo2.low_sustained") == A  # fmt: skip


def test_spo2_copd_patients_alert_below_88() -> None:
    times = _minutes(NOW_S - H, 10)
    cols = build_columns(
        ["p"] * 10 + ["q"] * 10, times * 2, [KindCode.SPO2] * 20, spo2_pct=[89] * 20,
    )  # fmt: skip
    profiles = {"q": PatientProfile(conditions=frozenset({"copd"}))}
    result = _result(cols, "spo2.low_sustained", profiles=profiles)
    assert result.status.tolist() == [A, C]
    assert evidence_for(result, cols, 1, conditions=frozenset({"copd"}))["target_conditions"] == [
        "copd"
    ]
    overrides = {"p": {"spo2.low_sustained": {"below_pct": 88.0, "clear_at_pct": 90.0}}}
    assert _status(cols, "spo2.low_sustained", overrides=overrides) == C


def test_spo2_stale_minutes_never_fire_and_late_ones_raise_a_late_finding() -> None:
    old = _minutes(NOW_S - 2 * D, 6)
    stale = spo2([85] * 6, old)
    assert _status(stale, "spo2.low_sustained") == C
    late = build_columns(
        ["p"] * 6, old, [KindCode.SPO2] * 6, spo2_pct=[85] * 6,
        received_at_s=[NOW_S - 600] * 6,
    )  # fmt: skip
    out = evaluate_all(
        late, NOW_S, prior=no_prior_state(), rules=[RULES_BY_ID["spo2.low_sustained"]]
    )
    by_subject = {r.subject: int(r.status[0]) for r in out}
    assert by_subject == {"": C, "late": A}


# ---- heart rate at rest --------------------------------------------------------------------


def test_tachycardia_needs_ten_minutes_at_rest() -> None:
    assert _status(heart([120] * 10, _minutes(NIGHT, 10)), "heart_rate.tachycardia_rest") == A
    assert _status(heart([120] * 9, _minutes(NIGHT, 9)), "heart_rate.tachycardia_rest") == C
    # The same at noon is exercise or daily life, not rest.
    assert _status(heart([120] * 30, _minutes(NOON, 30)), "heart_rate.tachycardia_rest") == C
    # A three-minute gap (a dropout) breaks the run: 5 + 5 minutes are not 10.
    times = _minutes(NIGHT, 5) + _minutes(NIGHT + 8 * M, 5)
    assert _status(heart([120] * 10, times), "heart_rate.tachycardia_rest") == C
    # A one-minute gap does not.
    times = _minutes(NIGHT, 5) + _minutes(NIGHT + 6 * M, 5)
    assert _status(heart([120] * 10, times), "heart_rate.tachycardia_rest") == A


def test_the_rest_window_is_the_patients_local_night() -> None:
    # 18:00-18:12 UTC yesterday is 02:00 in Shanghai (UTC+8).
    evening = NOW_S - NOW_S % D - 6 * H
    cols = heart([125] * 12, _minutes(evening, 12))
    assert _status(cols, "heart_rate.tachycardia_rest") == C
    shanghai = {"p": PatientProfile(timezone=ZoneInfo("Asia/Shanghai"))}
    assert _status(cols, "heart_rate.tachycardia_rest", profiles=shanghai) == A
    overrides = {"p": {"heart_rate.tachycardia_rest": {"rest_from_h": 22.0, "rest_to_h": 7.0,
                                                         "utc_offset_min": -240.0}}}  # fmt: skip
    assert _status(cols, "heart_rate.tachycardia_rest", overrides=overrides) == C
    # 18:00 UTC is 22:00 at UTC+4: inside a 22-07 window that wraps past midnight.
    overrides["p"]["heart_rate.tachycardia_rest"]["utc_offset_min"] = 240.0
    assert _status(cols, "heart_rate.tachycardia_rest", overrides=overrides) == A


def test_bradycardia_and_an_oximeters_pulse() -> None:
    assert _status(heart([38] * 12, _minutes(NIGHT, 12)), "heart_rate.bradycardia_rest") == A
    assert _status(heart([44] * 12, _minutes(NIGHT, 12)), "heart_rate.bradycardia_rest") == C
    oximeter = build_columns(
        ["p"] * 12, _minutes(NIGHT, 12), [KindCode.SPO2] * 12, spo2_pct=[95] * 12,
        pulse_per_min=[112] * 12,
    )  # fmt: skip
    assert _status(oximeter, "heart_rate.tachycardia_rest") == A
    result = _result(heart([130] * 12, _minutes(NIGHT, 12)), "heart_rate.tachycardia_rest")
    assert result.severity is not None and result.severity[0] == 30.0


# ---- fever and weight ----------------------------------------------------------------------


def test_fever_at_38_and_clearing_below_37_5() -> None:
    def temps(values: Sequence[float]) -> ReadingColumns:
        n = len(values)
        times = _minutes(NOW_S - 3 * H, n, H)
        kinds = [KindCode.BODY_TEMPERATURE] * n
        return build_columns(["p"] * n, times, kinds, body_temperature_c=list(values))

    assert _status(temps([37.9]), "temperature.fever") == C
    assert _status(temps([38.0]), "temperature.fever") == A
    assert _status(temps([38.4, 37.6]), "temperature.fever") == A
    assert _status(temps([38.4, 37.4]), "temperature.fever") == C


def _weights(values: Sequence[float], days_ago: Sequence[float]) -> ReadingColumns:
    n = len(values)
    times = [NOW_S - H - int(d * D) for d in days_ago]
    return build_columns(["p"] * n, times, [KindCode.BODY_WEIGHT] * n, body_weight_kg=list(values))


HF = {"p": PatientProfile(conditions=frozenset({"heart_failure"}))}


def test_weight_gain_of_more_than_2_kg_in_3_days_for_heart_failure_only() -> None:
    gain = _weights([80.0, 80.6, 81.4, 82.1], [3, 2, 1, 0])
    assert _status(gain, "weight.gain_hf_3d", profiles=HF) == A
    assert _status(gain, "weight.gain_hf_3d") == C  # no heart failure in the care plan
    enabled = {"p": {"weight.gain_hf_3d": {"enabled": 1.0}}}
    assert _status(gain, "weight.gain_hf_3d", overrides=enabled) == A
    result = _result(gain, "weight.gain_hf_3d", profiles=HF)
    assert result.stats["gain_kg"][0] == pytest.approx(2.1)
    # Exactly 2 kg is not "more than 2 kg"; the same gain over 4 days is slow weight gain.
    assert _status(_weights([80.0, 82.0], [3, 0]), "weight.gain_hf_3d", profiles=HF) == C
    assert _status(_weights([80.0, 82.5], [4, 0]), "weight.gain_hf_3d", profiles=HF) == C
    # The baseline is the lowest weight of the 3 days, not the first.
    dip = _weights([81.0, 79.8, 81.0, 81.9], [3, 2, 1, 0])
    assert _status(dip, "weight.gain_hf_3d", profiles=HF) == A


def test_weight_episode_clears_when_the_gain_is_back_under_1_kg() -> None:
    lost = _weights([80.0, 82.5, 80.8], [3, 1, 0])
    assert _status(lost, "weight.gain_hf_3d", profiles=HF) == C
    still = _weights([80.0, 82.5, 81.5], [3, 1, 0])
    assert _status(still, "weight.gain_hf_3d", profiles=HF) == A


# ---- CGM -----------------------------------------------------------------------------------


def cgm(values: Sequence[float | str], times: Sequence[int], patient: str = "p") -> ReadingColumns:
    special = [SpecialCode.LO if v == "LO" else SpecialCode.NONE for v in values]
    numbers = [float("nan") if isinstance(v, str) else v for v in values]
    n = len(values)
    return build_columns(
        [patient] * n, list(times), [KindCode.CGM_GLUCOSE] * n, glucose_mmol_l=numbers,
        glucose_special=special,
    )  # fmt: skip


def _trace(days: float, cadence_s: int, low_every: int = 0) -> tuple[list[float], list[int]]:
    """A CGM trace ending 5 min before now; every `low_every`-th reading 3.0 mmol/L."""
    n = int(days * D // cadence_s)
    times = [NOW_S - 300 - (n - 1 - i) * cadence_s for i in range(n)]
    values = [3.0 if low_every and i % low_every == 0 else 6.5 for i in range(n)]
    return values, times


def test_cgm_time_below_range_is_weighted_by_time_not_readings() -> None:
    # 14 days at 5-minute cadence, 1 reading in 20 low: 5 % of the time below 3.9.
    values, times = _trace(14, 300, low_every=20)
    cols = cgm(values, times)
    result = _result(cols, "cgm.tbr_14d")
    assert result.status[0] == A
    assert result.stats["time_below_range"][0] == pytest.approx(0.05, abs=0.002)
    # A burst of 1-minute readings while low (a receiver re-sending, or a 1-minute sensor)
    # adds readings, not time: the share stays where it was, a count would double it.
    burst_t = [t + k * 60 for t, v in zip(times, values, strict=True) if v < 3.9 for k in (1, 2, 3)]
    burst = cgm(values + [3.0] * len(burst_t), times + burst_t)
    share = _result(burst, "cgm.tbr_14d").stats["time_below_range"][0]
    assert share == pytest.approx(0.05, abs=0.002)
    low_readings = np.count_nonzero(burst.glucose_mmol_l < 3.9) / len(burst)
    assert low_readings > 0.15


def test_cgm_wear_sufficiency_is_70_percent_of_14_days() -> None:
    v9, t9 = _trace(9.5, 300)
    v10, t10 = _trace(10, 300)
    assert _status(cgm(v9, t9), "cgm.tir_14d") == N
    assert _status(cgm(v10, t10), "cgm.tir_14d") == C
    # A 15-minute sensor: a third of the readings, the same time covered.
    v15, t15 = _trace(10, 900)
    result = _result(cgm(v15, t15), "cgm.tir_14d")
    assert result.status[0] == C and result.stats["wear_share"][0] >= 0.70
    # A long gap is time without data, not time at the last value.
    gap_t = t10[: len(t10) // 2] + [t + 5 * D for t in t10[len(t10) // 2 :]]
    gap_v = v10[: len(gap_t)]
    kept = [t for t in gap_t if t <= NOW_S]
    assert _status(cgm(gap_v[: len(kept)], kept), "cgm.tir_14d") == N


def test_cgm_time_in_range_and_cv() -> None:
    n = 14 * 288
    times = [NOW_S - 300 - (n - 1 - i) * 300 for i in range(n)]
    swing = [4.0 + 8.0 * ((i // 12) % 2) for i in range(n)]  # hour by hour 4.0 / 12.0 mmol/L
    cols = cgm(swing, times)
    tir = _result(cols, "cgm.tir_14d")
    assert tir.status[0] == A and tir.stats["time_in_range"][0] == pytest.approx(0.5, abs=0.01)
    cv = _result(cols, "cgm.cv_14d")
    assert cv.status[0] == A and cv.stats["cv"][0] == pytest.approx(0.5, abs=0.01)
    steady = cgm([6.0 + 0.5 * (i % 2) for i in range(n)], times)
    assert _status(steady, "cgm.cv_14d") == C
    assert _status(steady, "cgm.tir_14d") == C


def test_cgm_lo_counts_below_range_and_fingersticks_do_not_count() -> None:
    values, times = _trace(14, 300, low_every=10)
    lo: list[float | str] = ["LO" if v < 3.9 else v for v in values]
    assert _status(cgm(lo, times), "cgm.tbr_14d") == A
    meter = build_columns(
        ["p"] * len(times), times, [KindCode.GLUCOSE] * len(times), glucose_mmol_l=values
    )
    assert _status(meter, "cgm.tbr_14d") == N


# ---- plausibility --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "column", "value", "subject"),
    [
        (KindCode.HEART_RATE, "heart_rate_per_min", 12.0, "heart_rate"),
        (KindCode.HEART_RATE, "heart_rate_per_min", 280.0, "heart_rate"),
        (KindCode.SPO2, "spo2_pct", 35.0, "spo2"),
        (KindCode.BODY_TEMPERATURE, "body_temperature_c", 45.5, "body_temperature"),
        (KindCode.BODY_TEMPERATURE, "body_temperature_c", 30.0, "body_temperature"),
        (KindCode.BODY_WEIGHT, "body_weight_kg", 412.0, "body_weight"),
        (KindCode.CGM_GLUCOSE, "glucose_mmol_l", 40.0, "cgm_glucose"),
    ],
)  # fmt: skip
def test_implausible_wearable_readings_are_flagged_and_never_evaluated(
    kind: KindCode, column: str, value: float, subject: str
) -> None:
    times = _minutes(NIGHT, 12)
    cols = build_columns(["p"] * 12, times, [kind] * 12, **{column: [value] * 12})  # type: ignore[arg-type]
    out = evaluate_all(cols, NOW_S, prior=no_prior_state())
    active = {(r.rule.rule_id, r.subject) for r in out if r.status[0] == A}
    assert active == {("quality.implausible", subject)}
    finding = next(r for r in out if r.subject == subject)
    assert sum(float(v[0]) for k, v in finding.stats.items() if k != "implausible_readings") == 12


def test_all_patients_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(11)
    pids, times, kinds, hr, sp, temp, wt = [], [], [], [], [], [], []
    for i in range(24):
        pid = f"p{i:02d}"
        base = NIGHT - int(rng.integers(0, 3)) * H
        for k in range(int(rng.integers(5, 20))):
            pids.append(pid)
            times.append(base + k * M)
            kinds.append(KindCode.HEART_RATE)
            hr.append(float(rng.choice([35.0, 70.0, 120.0])))
            sp.append(np.nan)
            temp.append(np.nan)
            wt.append(np.nan)
        for k in range(int(rng.integers(3, 12))):
            pids.append(pid)
            times.append(base + 30 * M + k * M * int(rng.integers(1, 4)))
            kinds.append(KindCode.SPO2)
            hr.append(np.nan)
            sp.append(float(rng.choice([86.0, 91.0, 96.0])))
            temp.append(np.nan)
            wt.append(np.nan)
        for d in range(4):
            pids.append(pid)
            times.append(NOW_S - H - d * D)
            kinds.append(KindCode.BODY_WEIGHT)
            hr.append(np.nan)
            sp.append(np.nan)
            temp.append(np.nan)
            wt.append(80.0 + float(rng.normal(0, 1.5)))
    columns = {"heart_rate_per_min": hr, "spo2_pct": sp, "body_temperature_c": temp,
               "body_weight_kg": wt}  # fmt: skip
    cols = build_columns(pids, times, kinds, **columns)  # type: ignore[arg-type]
    profiles = {pid: PatientProfile(conditions=frozenset({"heart_failure"})) for pid in pids[::2]}
    together = evaluate_all(cols, NOW_S, prior=no_prior_state(), profiles=profiles)
    for p, pid in enumerate(cols.patient_ids):
        alone = cols.take(cols.patient == p)
        one = build_columns(
            [pid] * len(alone), alone.measured_at_s, alone.kind,
            **{name: getattr(alone, name) for name in columns},
        )  # fmt: skip
        single = evaluate_all(one, NOW_S, prior=PriorState({}, {}), profiles=profiles)
        for a, b in zip(together, single, strict=True):
            assert (a.rule.rule_id, a.subject, int(a.status[p])) == (
                b.rule.rule_id, b.subject, int(b.status[0]),
            )  # fmt: skip
