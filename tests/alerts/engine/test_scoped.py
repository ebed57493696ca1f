"""Each kernel over only the rows it reads (`alerts.engine.scoped`) equals every kernel over all
rows (`evaluate_all`): random readings of every kind over three weeks (late, out of order,
repeated, implausible, around day boundaries), random open episodes with their anchor rows,
random "new" rows, care-plan conditions, time zones and overrides."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine.evaluate import (
    KERNELS,
    PatientProfile,
    PriorState,
    evaluate_all,
    horizon_s,
    no_prior_state,
)
from alerts.engine.scoped import COPY_SHARE, KINDS, evaluate_scoped, rule_horizon_s
from alerts.rules.catalog import RULES, RULES_BY_ID
from alerts.rules.columns import NO_OFFSET, KindCode, ReadingColumns, build_columns
from alerts.rules.conditions import COPD, HEART_FAILURE
from alerts.rules.late import SUBJECT as LATE
from alerts.rules.result import RuleResult

NOW_S = 1_772_352_000 + 5 * 3600  # 05:00 UTC: readings fall on both sides of midnight
DAY = 86_400
PATIENTS = ["a", "b", "c", "d"]
K = KindCode


def _value(kind: KindCode, x: float) -> dict[str, float]:
    """A value of `kind` from x in [0, 1): spread across each rule's thresholds and beyond
    the plausibility limits."""
    if kind in (K.GLUCOSE, K.CGM_GLUCOSE):
        return {"glucose_mmol_l": round(0.3 + 36.0 * x, 1)}
    if kind == K.BLOOD_PRESSURE:
        sys_ = round(40 + 280 * x)
        return {"systolic_mmhg": sys_, "diastolic_mmhg": round(sys_ * (0.45 + 0.3 * x))}
    if kind == K.HEART_RATE:
        return {"heart_rate_per_min": round(20 + 240 * x)}
    if kind == K.SPO2:
        return {"spo2_pct": round(45 + 55 * x), "pulse_per_min": round(30 + 110 * x)}
    if kind == K.BODY_TEMPERATURE:
        return {"body_temperature_c": round(33.5 + 10 * x, 1)}
    if kind == K.BODY_WEIGHT:
        return {"body_weight_kg": round(15 + 120 * x, 1)}
    return {}


def reading(kinds: Sequence[KindCode]) -> st.SearchStrategy[dict[str, Any]]:
    """A reading of one of `kinds` (an example draws a few kinds, so each is dense enough to
    meet its rule's windows)."""
    return st.fixed_dictionaries({
        "patient": st.sampled_from(PATIENTS),
        "kind": st.sampled_from(kinds),
        # Most within two days (the per-reading rules' reach), the rest over 21 days; a few
        # after now (a device clock running ahead).
        "age_s": st.one_of(st.integers(-1800, 2 * DAY), st.integers(-1800, 21 * DAY)),
        # Arrived at once, a few hours or days late.
        "delay_s": st.one_of(st.just(30), st.integers(0, 3 * DAY), st.integers(0, 20 * DAY)),
        "x": st.floats(0.0, 1.0, exclude_max=True),
        "meal": st.integers(0, 5),
        "symptoms": st.booleans(),
        "flagged": st.booleans(),
        "control": st.integers(0, 9).map(lambda i: i == 0),
        "offset": st.sampled_from([NO_OFFSET, 0, -300, 540]),
    })  # fmt: skip


def _columns(rows: list[dict[str, Any]]) -> ReadingColumns:
    n = len(rows)
    values: dict[str, Any] = {
        name: [math.nan] * n
        for name in ("glucose_mmol_l", "systolic_mmhg", "diastolic_mmhg", "pulse_per_min",
                     "heart_rate_per_min", "spo2_pct", "body_temperature_c", "body_weight_kg")
    }  # fmt: skip
    for i, r in enumerate(rows):
        for name, v in _value(r["kind"], r["x"]).items():
            values[name][i] = v
    measured = [NOW_S - r["age_s"] for r in rows]
    return build_columns(
        [r["patient"] for r in rows], measured, [int(r["kind"]) for r in rows],
        meal=[r["meal"] for r in rows], symptoms=[r["symptoms"] for r in rows],
        bp_flagged=[r["flagged"] for r in rows], control_solution=[r["control"] for r in rows],
        received_at_s=[t + r["delay_s"] for t, r in zip(measured, rows, strict=True)],
        utc_offset_min=[r["offset"] for r in rows],
        reading_ref=[f"r{i}" for i in range(n)], cursor=list(range(n)), **values,
    )  # fmt: skip


def _prior(cols: ReadingColumns, draw: st.DrawFn) -> PriorState:
    """Random open episodes: per rule key, some patients, each anchored at one of their rows
    (or at none)."""
    was = {}
    anchor = {}
    for rule in RULES:
        for subject, _ in KERNELS[rule.rule_id]:
            active = np.array([draw(st.booleans()) for _ in cols.patient_ids], dtype=np.bool_)
            rows = np.full(cols.n_patients, -1, dtype=np.int64)
            for p in np.flatnonzero(active):
                own = np.flatnonzero(cols.patient == p)
                if own.size and draw(st.booleans()):
                    rows[p] = int(own[draw(st.integers(0, own.size - 1))])
            was[(rule.rule_id, subject)] = active
            anchor[(rule.rule_id, subject)] = rows
    return PriorState(was, anchor)


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))  # type: ignore[arg-type]
    return a == b


def _assert_equal(scoped: list[RuleResult], full: list[RuleResult]) -> None:
    assert len(scoped) == len(full)
    for s, f in zip(scoped, full, strict=True):
        where = (f.rule.rule_id, f.subject)
        assert (s.rule, s.subject) == (f.rule, f.subject)
        for name in ("status", "anchor_row", "evidence_mask", "severity", "priority_level"):
            assert _same(getattr(s, name), getattr(f, name)), (where, name)
        assert s.stats.keys() == f.stats.keys(), where
        for key in f.stats:
            assert _same(s.stats[key], f.stats[key]), (where, key)
        for key in f.params:
            assert _same(s.params[key], f.params[key]), (where, key)
        assert (s.closed is None) == (f.closed is None), where
        if s.closed is not None and f.closed is not None:
            for name in ("first_row", "end_row", "patient", "carried_end_row"):
                assert _same(getattr(s.closed, name), getattr(f.closed, name)), (where, name)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from([k for k in KindCode if k != K.OTHER]), min_size=1,
                          max_size=3))  # fmt: skip
    cols = _columns(draw(st.lists(reading(kinds), max_size=80)))
    prior = _prior(cols, draw) if draw(st.booleans()) else no_prior_state()
    new_rows = (
        np.array([draw(st.booleans()) for _ in range(len(cols))], dtype=np.bool_)
        if draw(st.booleans())
        else None
    )
    zones: list[tzinfo | None] = [None, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")]
    profiles = {
        pid: PatientProfile(
            draw(st.sampled_from(zones)),
            frozenset(draw(st.sets(st.sampled_from([HEART_FAILURE, COPD])))),
        )
        for pid in PATIENTS
    }
    overrides = draw(
        st.sampled_from([
            {},
            {"b": {"glucose.hypo_l2": {"max_age_h": 60.0}, "bp.crisis": {"max_age_h": 6.0}}},
            {"c": {"weight.gain_hf_3d": {"window_h": 150.0, "max_age_h": 12.0}}},
            {"a": {"bp.crisis": {"max_age_h": 2.0}, "glucose.hyper": {"max_age_h": 4.0}}},
        ])
    )  # fmt: skip
    offline = draw(st.sets(st.sampled_from(PATIENTS)))
    return {"cols": cols, "prior": prior, "new_rows": new_rows, "profiles": profiles,
            "overrides": overrides, "hub_offline": offline}  # fmt: skip


@settings(max_examples=200, deadline=None, print_blob=True)
@given(cases(), st.sampled_from([1.0, COPY_SHARE, 0.0]))
def test_scoped_evaluation_equals_evaluating_every_row(
    case: dict[str, Any], copy_share: float
) -> None:
    cols = case.pop("cols")
    assert len(RULES) == len(KERNELS)
    # Every selection copied (1.0), the shipped share, or none (every kernel over all rows).
    _assert_equal(
        evaluate_scoped(cols, NOW_S, rules=RULES, copy_share=copy_share, **case),
        evaluate_all(cols, NOW_S, rules=RULES, **case),
    )


def test_every_kernel_is_scoped_to_its_kinds_and_horizon() -> None:
    """Every rule but adherence and the plausibility finding (one kind per subject) names the
    kinds it reads; per-reading rules read a day or two live, their late findings every row."""
    named = {r.rule_id for r in RULES} - set(KINDS)
    assert named == {"adherence.no_readings", "quality.implausible"}
    crisis = RULES_BY_ID["bp.crisis"]
    assert rule_horizon_s(crisis, "") == 24 * 3600 + 15 * 60 + 1
    assert rule_horizon_s(crisis, LATE) is None
    weight = RULES_BY_ID["weight.gain_hf_3d"]
    assert rule_horizon_s(weight, "") == (48 + 78) * 3600 + 1
    assert rule_horizon_s(RULES_BY_ID["glucose.tir_14d"], "") == 14 * DAY + 1


def test_no_rows_and_only_old_rows() -> None:
    """Nothing to select (no rows at all, or none within a per-reading rule's reach)."""
    empty = _columns([])
    _assert_equal(
        evaluate_scoped(empty, NOW_S, prior=no_prior_state()),
        evaluate_all(empty, NOW_S, prior=no_prior_state()),
    )
    old = _columns([
        {"patient": "a", "kind": K.GLUCOSE, "age_s": 10 * DAY, "delay_s": 30, "x": 0.02,
         "meal": 0, "symptoms": False, "flagged": False, "control": False, "offset": NO_OFFSET},
    ])  # fmt: skip
    was = {("glucose.hypo_l2", ""): np.array([True])}
    prior = PriorState(was, {("glucose.hypo_l2", ""): np.array([0])})
    _assert_equal(evaluate_scoped(old, NOW_S, prior=prior), evaluate_all(old, NOW_S, prior=prior))


def _one(patient: str, kind: KindCode, age_s: int, x: float, delay_s: int = 30) -> dict[str, Any]:
    return {"patient": patient, "kind": kind, "age_s": age_s, "delay_s": delay_s, "x": x,
            "meal": 0, "symptoms": False, "flagged": False, "control": False,
            "offset": NO_OFFSET}  # fmt: skip


def test_weight_baseline_before_the_live_readings() -> None:
    """A weight gain's baseline lies up to `window_h` before a fresh weight: older than the
    rule's `max_age_h`, still within its horizon."""
    cols = _columns(
        [_one("a", K.BODY_WEIGHT, 60 * 3600, 0.4), _one("a", K.BODY_WEIGHT, 3600, 0.45)]
    )
    profiles = {"a": PatientProfile(None, frozenset({HEART_FAILURE}))}
    full = evaluate_all(cols, NOW_S, prior=no_prior_state(), profiles=profiles)
    gain = next(r for r in full if r.rule.rule_id == "weight.gain_hf_3d" and not r.subject)
    assert gain.status[0] == 1  # 6 kg within 3 days: active
    scoped = evaluate_scoped(cols, NOW_S, prior=no_prior_state(), profiles=profiles)
    _assert_equal(scoped, full)


def test_late_finding_under_a_shorter_max_age() -> None:
    """A care plan's shorter `max_age_h` makes a reading late that is not under the default:
    the late finding still sees that patient's rows."""
    cols = _columns([_one("a", K.BLOOD_PRESSURE, 5 * 3600, 0.9, delay_s=4 * 3600)])
    overrides = {"a": {"bp.crisis": {"max_age_h": 2.0}}}
    full = evaluate_all(cols, NOW_S, prior=no_prior_state(), overrides=overrides)
    late = next(r for r in full if r.rule.rule_id == "bp.crisis" and r.subject == LATE)
    assert late.status[0] == 1  # severe, taken 5 h ago, arrived 1 h ago: late finding
    _assert_equal(evaluate_scoped(cols, NOW_S, prior=no_prior_state(), overrides=overrides), full)


def test_a_late_weights_baseline_lies_within_the_rules_horizon() -> None:
    """A weight that arrives late (taken up to `late_max_age_d` before it arrived, arriving
    within `max_age_h`) is compared with the weights of the `window_h` before it: the rows a
    continuous step gathers (`horizon_s`) must reach back that far, or the step misses a late
    weight gain that a full evaluation raises (the cursor has passed the reading by then)."""
    cols = _columns([
        _one("a", K.BODY_WEIGHT, 18 * DAY, 0.4),  # the baseline, 60 h before the late weight
        _one("a", K.BODY_WEIGHT, 15 * DAY + 12 * 3600, 0.45, delay_s=14 * DAY - 3600),
    ])  # fmt: skip
    profiles = {"a": PatientProfile(None, frozenset({HEART_FAILURE}))}
    full = evaluate_all(cols, NOW_S, prior=no_prior_state(), profiles=profiles)
    late = next(r for r in full if r.rule.rule_id == "weight.gain_hf_3d" and r.subject == LATE)
    assert late.status[0] == 1  # 6 kg above the weight of 60 h before, arrived 37 h ago
    rules = [r for r in RULES if r.rule_id != "adherence.no_readings"]
    trimmed = cols.take(cols.measured_at_s >= NOW_S - horizon_s(rules))
    cut = evaluate_all(trimmed, NOW_S, prior=no_prior_state(), profiles=profiles, rules=rules)
    statuses = {(r.rule.rule_id, r.subject): r.status.tolist() for r in full}
    assert {(r.rule.rule_id, r.subject): r.status.tolist() for r in cut} == {
        key: status for key, status in statuses.items() if key[0] != "adherence.no_readings"
    }
