"""Hysteresis with an episode already open, per-patient thresholds in one vectorized pass,
fasting-glucose trend, adherence per care plan, crisis evidence."""

from __future__ import annotations

import numpy as np

from alerts.engine.evaluate import PriorState, evaluate_all, evidence_for, no_prior_state
from alerts.rules.catalog import RULES_BY_ID
from alerts.rules.columns import KindCode, MealCode, build_columns
from alerts.rules.segments import Status
from tests.alerts.rules.cases import NOW_S, D, H, bp, glucose, status_of


def test_window_rule_stays_open_between_clear_and_open_thresholds() -> None:
    # 20 of 28 in range = 71.4 %: above the 70 % opening threshold, below the 75 % clearing one.
    cols = glucose([6.0] * 20 + [11.0] * 8, every_s=10 * H)
    rule = RULES_BY_ID["glucose.tir_14d"]
    closed = evaluate_all(cols, NOW_S, prior=no_prior_state(), rules=[rule])[0]
    was_open = PriorState({("glucose.tir_14d", ""): np.array([True])}, {})
    still = evaluate_all(cols, NOW_S, prior=was_open, rules=[rule])[0]
    assert closed.status[0] == Status.CLEAR
    assert still.status[0] == Status.ACTIVE
    assert still.anchor_row[0] == -1  # the open episode continues, no new id


def test_insufficient_data_neither_opens_nor_resolves() -> None:
    cols = glucose([11.0] * 5, every_s=10 * H)
    rule = RULES_BY_ID["glucose.tir_14d"]
    was_open = PriorState({("glucose.tir_14d", ""): np.array([True])}, {})
    assert (
        evaluate_all(cols, NOW_S, prior=was_open, rules=[rule])[0].status[0] == Status.INSUFFICIENT
    )


def test_per_patient_thresholds_in_one_pass() -> None:
    cols = build_columns(
        ["a", "b", "c"], [NOW_S - H] * 3, [KindCode.GLUCOSE] * 3, glucose_mmol_l=[4.2] * 3
    )
    plan = {"b": {"glucose.hypo_l1": {"below_mmol_l": 4.4}}}
    (result, *_) = evaluate_all(
        cols, NOW_S, prior=no_prior_state(), overrides=plan, rules=[RULES_BY_ID["glucose.hypo_l1"]]
    )
    assert result.status.tolist() == [Status.CLEAR, Status.ACTIVE, Status.CLEAR]


def test_fasting_glucose_trend() -> None:
    rising = [6.0 + 0.2 * d for d in range(14)]
    flat = [6.5 + 0.1 * (d % 2) for d in range(14)]
    fasting = MealCode.FASTING
    assert (
        status_of("glucose.fasting_trend_14d", glucose(rising, every_s=D, meal=fasting))
        == Status.ACTIVE
    )
    assert (
        status_of("glucose.fasting_trend_14d", glucose(flat, every_s=D, meal=fasting))
        == Status.CLEAR
    )
    assert status_of("glucose.fasting_trend_14d", glucose(rising, every_s=D)) == Status.INSUFFICIENT


def test_adherence_follows_the_care_plan_and_names_the_kind() -> None:
    cols = build_columns(["p"], [NOW_S - 5 * D], [KindCode.GLUCOSE], glucose_mmol_l=[6.0])
    rule = RULES_BY_ID["adherence.no_readings"]
    plan = {"p": {"adherence.no_readings": {"expects_blood_pressure": 1.0, "expects_glucose": 0.0}}}
    results = evaluate_all(cols, NOW_S, prior=no_prior_state(), overrides=plan, rules=[rule])
    by_subject = {r.subject: Status(int(r.status[0])) for r in results}
    assert by_subject == {"glucose": Status.INSUFFICIENT, "blood_pressure": Status.ACTIVE}


def test_crisis_evidence_counts_confirmation_and_symptoms() -> None:
    t = NOW_S - 3 * H
    cols = build_columns(
        ["p", "p"], [t, t + 120], [KindCode.BLOOD_PRESSURE] * 2, systolic_mmhg=[182, 186],
        diastolic_mmhg=[100, 104], symptoms=[False, True], reading_ref=["r0", "r1"],
    )  # fmt: skip
    (result, *_) = evaluate_all(
        cols, NOW_S, prior=no_prior_state(), rules=[RULES_BY_ID["bp.crisis"]]
    )
    evidence = evidence_for(result, cols, 0, int(result.anchor_row[0]))
    assert evidence["reading_ids"] == ["r0", "r1"]
    assert evidence["statistics"] == {  # type: ignore[comparison-overlap]
        "fresh_readings": 2.0, "confirmed_readings": 2.0, "symptom_readings": 1.0,
        "awaiting_remeasure": 0.0,
    }  # fmt: skip
    assert evidence["thresholds"]["systolic_mmhg"] == 180.0  # type: ignore[index]


def test_home_protocol_uses_local_time_slots() -> None:
    # Readings at 03:30 UTC are outside China's 06-09 morning slot in UTC, and at 07:30 local
    # for a patient at UTC+4 (the care plan's offset).
    today = NOW_S - NOW_S % D
    times = [today - d * D + 3 * H + 1800 + 60 * k for d in range(1, 7) for k in range(2)]
    cols = bp([(150.0, 95.0)] * len(times), times)
    plan = {"p": {"bp.home_china_2019": {"utc_offset_min": 240.0}}}
    rule = RULES_BY_ID["bp.home_china_2019"]
    utc = evaluate_all(cols, NOW_S, prior=no_prior_state(), rules=[rule])[0]
    local = evaluate_all(cols, NOW_S, prior=no_prior_state(), overrides=plan, rules=[rule])[0]
    assert utc.status[0] == Status.INSUFFICIENT
    assert local.status[0] == Status.ACTIVE
    assert local.stats["readings"][0] == 10  # day 1 (two readings) discarded
