"""Issue 17 at the kernels: a reading counts once, implausible readings are flagged and never
evaluated, symptoms raise a crisis, late findings, comorbidity targets, local time zones."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.engine.evaluate import PatientProfile, evaluate_all, evidence_for, no_prior_state
from alerts.rules.catalog import RULES_BY_ID, resolve_params
from alerts.rules.columns import NO_OFFSET, KindCode, ReadingColumns, build_columns
from alerts.rules.conditions import (
    CHRONIC_KIDNEY_DISEASE,
    CORONARY_HEART_DISEASE,
    DIABETES,
    normalize,
)
from alerts.rules.localtime import zone_offsets_s
from alerts.rules.segments import Status
from tests.alerts.rules.cases import NOW_S, D, H, bp, status_of

A, C, N = Status.ACTIVE, Status.CLEAR, Status.INSUFFICIENT


def _results(cols: ReadingColumns, rule_id: str, **kw: object) -> dict[str, object]:
    rule = RULES_BY_ID[rule_id]
    out = evaluate_all(cols, NOW_S, prior=no_prior_state(), rules=[rule], **kw)  # type: ignore[arg-type]
    return {r.subject: r for r in out}


# ---- 1. duplicates -------------------------------------------------------------------------


def test_identical_rows_count_once_in_the_columns() -> None:
    t = NOW_S - H
    cols = build_columns(
        ["p", "p", "p", "q"], [t, t, t, t], [KindCode.BLOOD_PRESSURE] * 4,
        systolic_mmhg=[190, 190, 150, 190], diastolic_mmhg=[110, 110, 90, 110],
        reading_ref=["a", "b", "c", "d"],
    )  # fmt: skip
    assert sorted(cols.reading_ref.tolist()) == ["a", "c", "d"]  # "b" repeats "a"


def test_a_duplicated_crisis_reading_is_not_its_own_confirmation() -> None:
    t = NOW_S - 5 * 60
    once = bp([(190, 110)], [t])
    twice = bp([(190, 110), (190, 110)], [t, t])
    # Re-measure time (15 min) not over: one reading, duplicated or not, still waits.
    assert status_of("bp.crisis", once) == C
    assert status_of("bp.crisis", twice) == C
    later = NOW_S + 20 * 60  # nobody re-measured: it fires, unconfirmed
    result = _results(twice, "bp.crisis")[""]
    assert status_of("bp.crisis", twice, later) == A
    assert result.stats["confirmed_readings"][0] == 0


def test_home_protocol_counts_eleven_readings_sent_twelve_times_as_eleven() -> None:
    today = NOW_S - NOW_S % D
    times = [today - d * D + 7 * H + 60 * k for d in range(1, 7) for k in range(2)][:11]
    pairs = [(150.0, 95.0)] * 11
    assert status_of("bp.home_aha_ama_2020", bp(pairs, times)) == N
    dup = bp([*pairs, pairs[0]], [*times, times[0]])
    assert status_of("bp.home_aha_ama_2020", dup) == N  # 11 readings, not 12


# ---- 2. implausible values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        ((80, 120), "diastolic_not_below_systolic"),
        ((0, 0), "systolic_below_range"),
        ((120, 115), "pulse_pressure_too_narrow"),
        ((320, 100), "systolic_above_range"),
        ((100, 20), "diastolic_below_range"),
    ],
)
def test_implausible_cuff_reading_raises_no_threshold_alert_only_a_data_quality_finding(
    pair: tuple[float, float], reason: str
) -> None:
    cols = bp([pair], [NOW_S - 2 * H])
    for rule in ("bp.crisis", "bp.hypotension"):
        assert status_of(rule, cols) == C, rule
    quality = _results(cols, "quality.implausible")
    finding = quality["blood_pressure"]
    assert finding.rule.priority.value == "low"
    assert finding.status[0] == A
    assert finding.stats[reason][0] == 1
    assert quality["glucose"].status[0] == C
    evidence = evidence_for(finding, cols, 0, -1)
    assert evidence["reading_ids"] == ["r0"]


def test_implausible_glucose_is_kept_out_of_every_glucose_rule() -> None:
    cols = build_columns(
        ["p", "p"], [NOW_S - 2 * H, NOW_S - H], [KindCode.GLUCOSE] * 2,
        glucose_mmol_l=[0.0, 40.0], reading_ref=["zero", "forty"], device_ref=["m1", "m1"],
    )  # fmt: skip
    for rule in ("glucose.hypo_l2", "glucose.hypo_l1", "glucose.hyper"):
        assert status_of(rule, cols) == C, rule
    finding = _results(cols, "quality.implausible")["glucose"]
    assert finding.status[0] == A
    assert finding.stats["glucose_below_range"][0] == 1
    assert finding.stats["glucose_above_range"][0] == 1
    assert evidence_for(finding, cols, 0)["device_ids"] == ["m1"]
    # A meter's LO/HI are specials, not numbers: still evaluated.
    lo = build_columns(["p"], [NOW_S - H], [KindCode.GLUCOSE], glucose_special=[2])
    assert status_of("glucose.hypo_l2", lo) == A


def test_plausibility_limits_are_the_rule_parameters() -> None:
    params = resolve_params(RULES_BY_ID["quality.implausible"], ["p"], {})
    assert params["systolic_max_mmhg"][0] == 300.0
    assert params["glucose_max_mmol_l"][0] == pytest.approx(600 / 18.016, abs=1e-3)
    assert params["glucose_min_mmol_l"][0] == pytest.approx(10 / 18.016, abs=1e-3)
    plan = {"p": {"quality.implausible": {"diastolic_min_mmhg": 15.0}}}
    cols = bp([(100, 20)], [NOW_S - H])
    assert _results(cols, "quality.implausible", overrides=plan)["blood_pressure"].status[0] == C


# ---- 6. symptoms ---------------------------------------------------------------------------


def test_a_crisis_is_medium_without_symptoms_and_high_at_once_with_them() -> None:
    t = NOW_S - 3 * H
    plain = build_columns(
        ["p", "p"], [t, t + 120], [KindCode.BLOOD_PRESSURE] * 2, systolic_mmhg=[190, 188],
        diastolic_mmhg=[100, 100], reading_ref=["a", "b"],
    )  # fmt: skip
    result = _results(plain, "bp.crisis")[""]
    assert result.status[0] == A
    assert result.priority_level is not None and result.priority_level[0] == 1  # medium
    # One severe reading with symptoms two minutes ago: no waiting for a re-measurement.
    urgent = build_columns(
        ["p"], [NOW_S - 120], [KindCode.BLOOD_PRESSURE], systolic_mmhg=[185],
        diastolic_mmhg=[100], symptoms=[True], reading_ref=["s"],
    )  # fmt: skip
    result = _results(urgent, "bp.crisis")[""]
    assert result.status[0] == A
    assert result.priority_level is not None and result.priority_level[0] == 2  # high


# ---- 7. late findings ----------------------------------------------------------------------


def _late_hypo(received_s: int, measured_s: int) -> ReadingColumns:
    return build_columns(
        ["p"], [measured_s], [KindCode.GLUCOSE], glucose_mmol_l=[2.5], reading_ref=["old"],
        received_at_s=[received_s],
    )  # fmt: skip


def test_a_back_filled_hypo_raises_a_late_finding_with_capped_priority() -> None:
    cols = _late_hypo(NOW_S - 10 * 60, NOW_S - 3 * D)
    results = _results(cols, "glucose.hypo_l2")
    assert results[""].status[0] == C  # never a live alert: stale on arrival
    late = results["late"]
    assert late.status[0] == A
    assert late.priority_level is not None and late.priority_level[0] == 1  # high capped
    evidence = evidence_for(late, cols, 0)
    assert evidence["late"] is True
    assert evidence["measured_at_s"] == [NOW_S - 3 * D]
    assert evidence["received_at_s"] == [NOW_S - 10 * 60]


def test_late_findings_need_a_late_arrival_and_expire() -> None:
    on_time = _late_hypo(NOW_S - 3 * D + 60, NOW_S - 3 * D)
    assert _results(on_time, "glucose.hypo_l2")["late"].status[0] == C
    long_ago = _late_hypo(NOW_S - 2 * D, NOW_S - 5 * D)  # arrived late, but 2 days ago
    assert _results(long_ago, "glucose.hypo_l2")["late"].status[0] == C
    too_old = _late_hypo(NOW_S - 60, NOW_S - 30 * D)  # beyond late_max_age_d
    assert _results(too_old, "glucose.hypo_l2")["late"].status[0] == C
    seen = _late_hypo(NOW_S - 60, NOW_S - 3 * D)  # seen by an earlier evaluation
    (_, late) = evaluate_all(
        seen, NOW_S, prior=no_prior_state(), rules=[RULES_BY_ID["glucose.hypo_l2"]],
        new_rows=np.zeros(1, dtype=np.bool_),
    )  # fmt: skip
    assert late.status[0] == C


def test_a_back_filled_symptomatic_crisis_is_a_late_finding_of_medium_priority() -> None:
    t = NOW_S - 2 * D
    cols = build_columns(
        ["p"], [t], [KindCode.BLOOD_PRESSURE], systolic_mmhg=[200], diastolic_mmhg=[125],
        symptoms=[True], received_at_s=[NOW_S - 60], reading_ref=["c"],
    )  # fmt: skip
    late = _results(cols, "bp.crisis")["late"]
    assert late.status[0] == A
    assert late.priority_level is not None and late.priority_level[0] == 1


# ---- 4. comorbidities ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "condition"),
    [
        ("diabetes", DIABETES), ("icd10:E11.9", DIABETES),
        ("http://snomed.info/sct|44054006", DIABETES), ("CKD", CHRONIC_KIDNEY_DISEASE),
        ("http://hl7.org/fhir/sid/icd-10|N18.3", CHRONIC_KIDNEY_DISEASE),
        ("snomed:414545008", CORONARY_HEART_DISEASE), ("icd10:I25.10", CORONARY_HEART_DISEASE),
        ("icd10:I10", None), ("asthma", None), ("snomed:38341003", None),
    ],
)  # fmt: skip
def test_condition_codes(code: str, condition: str | None) -> None:
    assert normalize(code) == condition


def _esh_week(sys_: float, dia: float) -> ReadingColumns:
    today = NOW_S - NOW_S % D
    times = [today - d * D + h * H + 60 * k for d in range(7) for h in (7, 19) for k in range(2)]
    times = [t for t in times if t <= NOW_S]
    return bp([(sys_, dia)] * len(times), times)


def test_diabetes_chd_or_ckd_lower_the_esh_home_goal_to_130_80() -> None:
    cols = _esh_week(132, 78)
    plain = _results(cols, "bp.home_esh_7d")[""]
    assert plain.status[0] == C  # 132/78 < 135/85
    for condition in (DIABETES, CORONARY_HEART_DISEASE, CHRONIC_KIDNEY_DISEASE):
        profiles = {"p": PatientProfile(conditions=frozenset({condition}))}
        result = _results(cols, "bp.home_esh_7d", profiles=profiles)[""]
        assert result.status[0] == A, condition
        evidence = evidence_for(result, cols, 0, conditions=frozenset({condition}))
        assert evidence["thresholds"]["systolic_mmhg"] == 130.0  # type: ignore[index]
        assert evidence["target_conditions"] == [condition]
        assert "PMC8109940" in str(evidence["conditions_source"])
    # An explicit care-plan override still wins over the condition's target.
    plan = {"p": {"bp.home_esh_7d": {"systolic_mmhg": 140.0, "clear_systolic_mmhg": 137.0}}}
    profiles = {"p": PatientProfile(conditions=frozenset({DIABETES}))}
    result = _results(cols, "bp.home_esh_7d", profiles=profiles, overrides=plan)[""]
    assert result.status[0] == C


# ---- 3. local time -------------------------------------------------------------------------


def test_zone_offsets_follow_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 01:00 UTC: CET (+1 h) becomes CEST (+2 h).
    change = 1_774_746_000
    t = np.array([change - 1, change, change + 3600], dtype=np.int64)
    assert zone_offsets_s(berlin, t).tolist() == [3600, 7200, 7200]


def _slot_readings(local_hour_utc: int) -> ReadingColumns:
    """Two readings a day on days 1-6 before today, at `local_hour_utc` o'clock UTC."""
    today = NOW_S - NOW_S % D
    times = [today - d * D + local_hour_utc * H + 60 * k for d in range(1, 7) for k in range(2)]
    return bp([(150.0, 95.0)] * len(times), times)


def test_china_protocol_slots_use_the_patients_time_zone() -> None:
    cols = _slot_readings(23)  # 23:00 UTC = 07:00 in Shanghai: inside 06-09
    assert _results(cols, "bp.home_china_2019")[""].status[0] == N  # 23 h UTC: no slot
    shanghai = {"p": PatientProfile(timezone=ZoneInfo("Asia/Shanghai"))}
    result = _results(cols, "bp.home_china_2019", profiles=shanghai)[""]
    assert result.status[0] == A
    # The explicit fixed offset still overrides the zone.
    plan = {"p": {"bp.home_china_2019": {"utc_offset_min": 0.0}}}
    fixed = _results(cols, "bp.home_china_2019", profiles=shanghai, overrides=plan)[""]
    assert fixed.status[0] == N


def test_an_offset_written_with_the_reading_is_its_local_time() -> None:
    today = NOW_S - NOW_S % D
    times = [today - d * D + 23 * H + 60 * k for d in range(1, 7) for k in range(2)]
    n = len(times)
    cols = build_columns(
        ["p"] * n, times, [KindCode.BLOOD_PRESSURE] * n, systolic_mmhg=[150.0] * n,
        diastolic_mmhg=[95.0] * n, utc_offset_min=[480] * n,
    )  # fmt: skip
    assert _results(cols, "bp.home_china_2019")[""].status[0] == A
    none = build_columns(
        ["p"] * n, times, [KindCode.BLOOD_PRESSURE] * n, systolic_mmhg=[150.0] * n,
        diastolic_mmhg=[95.0] * n, utc_offset_min=[NO_OFFSET] * n,
    )  # fmt: skip
    assert _results(none, "bp.home_china_2019")[""].status[0] == N
