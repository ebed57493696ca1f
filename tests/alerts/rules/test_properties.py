"""The vectorized kernels against the per-patient reference (tests/alerts/rules/reference.py)
on random data: empty windows, single readings, specials, unsorted input, many patients."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine.evaluate import evaluate_all, no_prior_state
from alerts.rules.catalog import MG54, MG70, RULES_BY_ID, resolve_params
from alerts.rules.columns import KindCode, SpecialCode, build_columns
from alerts.rules.segments import Status, hysteresis_state
from alerts.rules.trends import theil_sen_slopes
from tests.alerts.rules import reference

NOW_S = 1_772_352_000
DAY = 86_400
SPECIALS = ["HI", "LO", "NaN"]

row = st.fixed_dictionaries({
    "patient": st.sampled_from(["a", "b", "c", "d"]),
    "age_s": st.integers(-3600, 20 * DAY),
    "v": st.one_of(st.integers(10, 250).map(lambda i: i / 10), st.sampled_from(SPECIALS)),
    "control": st.booleans(),
})  # fmt: skip


def _columns(rows: list[dict[str, object]]) -> tuple[object, list[dict[str, float]]]:
    special = {"HI": SpecialCode.HI, "LO": SpecialCode.LO, "NaN": SpecialCode.INVALID}
    n = len(rows)
    cols = build_columns(
        [str(r["patient"]) for r in rows],
        [NOW_S - int(r["age_s"]) for r in rows],  # type: ignore[call-overload]
        [KindCode.GLUCOSE] * n,
        glucose_mmol_l=[math.nan if isinstance(r["v"], str) else r["v"] for r in rows],
        glucose_special=[special.get(r["v"], 0) if isinstance(r["v"], str) else 0 for r in rows],  # type: ignore[call-overload]
        control_solution=[r["control"] for r in rows],
        reading_ref=[f"r{i}" for i in range(n)],
    )  # fmt: skip
    ref_rows = [
        {
            "patient": r["patient"], "t": NOW_S - int(r["age_s"]), "cursor": i,  # type: ignore[call-overload]
            "v": math.nan if isinstance(r["v"], str) else float(r["v"]),  # type: ignore[arg-type]
            "lo": r["v"] == "LO",
            "valid": not r["control"] and r["v"] != "NaN",
        }
        for i, r in enumerate(rows)
    ]  # fmt: skip
    # A reading counts once: identical rows (same patient, time, value, flags) are one reading.
    seen: set[tuple[object, ...]] = set()
    unique = []
    for r, raw in zip(ref_rows, rows, strict=True):
        identity = (r["patient"], r["t"], str(raw["v"]), raw["control"])
        if identity not in seen:
            seen.add(identity)
            unique.append(r)
    return cols, unique  # type: ignore[return-value]


def _near(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=60, deadline=None, derandomize=False, print_blob=True)
@given(st.lists(row, max_size=60))
def test_glucose_windows_match_reference(rows: list[dict[str, object]]) -> None:
    cols, ref_rows = _columns(rows)
    rules = [RULES_BY_ID[r] for r in ("glucose.tir_14d", "glucose.tbr_14d", "glucose.cv_14d")]
    tir, tbr, cv = evaluate_all(cols, NOW_S, prior=no_prior_state(), rules=rules)  # type: ignore[arg-type]
    groups = reference.group(ref_rows)
    for p, pid in enumerate(cols.patient_ids):  # type: ignore[attr-defined]
        ref = reference.glucose_window(groups[pid], NOW_S, 14.0)
        assert tir.stats["readings"][p] == ref["n"]
        assert _near(float(tir.stats["share_in_range"][p]), ref["share_in_range"])
        assert _near(float(tbr.stats["share_below_range"][p]), ref["share_below"])
        assert _near(float(cv.stats["cv"][p]), ref["cv"])
        fresh = not math.isnan(ref["newest"]) and ref["newest"] >= NOW_S - 72 * 3600
        enough = fresh and ref["n"] >= 28 and ref["days"] >= 10
        expected = Status.INSUFFICIENT if not enough else (
            Status.ACTIVE if ref["share_in_range"] < 0.70 else Status.CLEAR)  # fmt: skip
        assert tir.status[p] == expected


@settings(max_examples=60, deadline=None, print_blob=True)
@given(st.lists(row, max_size=40), st.lists(st.booleans(), min_size=4, max_size=4))
def test_hypo_hysteresis_matches_reference(
    rows: list[dict[str, object]], initial: list[bool]
) -> None:
    cols, ref_rows = _columns(rows)
    n_pat = cols.n_patients  # type: ignore[attr-defined]
    was = np.array(initial[:n_pat], dtype=bool)
    (result, *_) = evaluate_all(
        cols, NOW_S, prior=type(no_prior_state())({("glucose.hypo_l2", ""): was}, {}),  # type: ignore[arg-type]
        rules=[RULES_BY_ID["glucose.hypo_l2"]],
    )  # fmt: skip
    groups = reference.group(ref_rows)
    for p, pid in enumerate(cols.patient_ids):  # type: ignore[attr-defined]
        fresh = [r for r in groups[pid] if r["valid"] and NOW_S - 24 * 3600 < r["t"] <= NOW_S]
        for r in fresh:
            r["trig"] = r["v"] < MG54 or r["lo"]
            r["clr"] = r["v"] >= 3.9 or (math.isnan(r["v"]) and not r["lo"])
        state = reference.hysteresis(fresh, "trig", "clr", bool(was[p]))
        assert (result.status[p] == Status.ACTIVE) == state


@settings(max_examples=40, deadline=None, print_blob=True)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(80, 200)), max_size=50)
)
def test_theil_sen_matches_scipy(points: list[tuple[int, int, int]]) -> None:
    pts = sorted(points)
    patient = np.array([p for p, _, _ in pts], dtype=np.int64)
    x = np.array([t / 3 for _, t, _ in pts], dtype=np.float64)
    y = np.array([v for _, _, v in pts], dtype=np.float64)
    got = theil_sen_slopes(patient, x, y, 4)
    for p in range(4):
        m = patient == p
        expected = reference.theil_sen(list(x[m]), list(y[m]))
        assert _near(float(got[p]), expected), (p, got[p], expected)


def test_hysteresis_state_carries_initial_state_over_empty_and_undecided_rows() -> None:
    patient = np.array([0, 0, 1], dtype=np.int64)
    trigger = np.array([False, False, True])
    clear = np.array([False, True, False])
    state = hysteresis_state(patient, trigger, clear, np.array([True, False, True]))
    assert state.tolist() == [True, False, True]


def test_override_changes_one_patient_only() -> None:
    rule = RULES_BY_ID["glucose.hypo_l1"]
    params = resolve_params(rule, ("a", "b"), {"b": {"glucose.hypo_l1": {"below_mmol_l": 4.4}}})
    assert params["below_mmol_l"].tolist() == [MG70, 4.4]


@settings(max_examples=40, deadline=None, print_blob=True)
@given(st.lists(row, max_size=50))
def test_trailing_stats_match_reference(rows: list[dict[str, object]]) -> None:
    from alerts.rules.glucose import trailing_stats

    cols, ref_rows = _columns(rows)
    got = trailing_stats(cols, 7 * DAY)  # type: ignore[arg-type]
    groups = reference.group(ref_rows)
    expected = [s for pid in cols.patient_ids for s in reference.trailing(groups[pid], 7 * DAY)]  # type: ignore[attr-defined]
    assert len(expected) == got["readings"].shape[0]
    for i, ref in enumerate(expected):
        for name, value in ref.items():
            assert np.isclose(got[name][i], value, rtol=1e-9, atol=1e-9, equal_nan=True), name


def test_a_window_of_one_repeated_value_has_a_cv_of_exactly_zero() -> None:
    # The running sums are centred on the patient's mean, not the window's: after the varied
    # readings leave the window, their rounding used to leave a CV of about 1e-8 .. 1e-6.
    from alerts.rules.trailing import trailing_window

    v = np.array([27.7, 5.55, 5.55, 2.2, 5.55, 5.55])
    t = np.array([10, 15, 19, 30, 40, 41], dtype=np.int64) * DAY
    got = trailing_window(
        np.zeros(len(v), dtype=np.int64), t, v, np.ones(len(v), dtype=np.bool_),
        n_patients=1, window_s=5 * DAY, low=MG70, high=10.0,
    )  # fmt: skip
    assert got["readings"].tolist() == [1, 2, 2, 1, 1, 2]
    assert got["cv"][2] == 0.0  # 27.7 left the window (the CV was 4.3e-8)
    assert got["cv"][5] == 0.0
    assert got["cv"][1] > 0.5  # a varied window keeps its spread


@settings(max_examples=30, deadline=None, print_blob=True)
@given(st.lists(row, max_size=60))
def test_trimming_to_the_rules_horizon_changes_nothing(rows: list[dict[str, object]]) -> None:
    from alerts.engine.evaluate import horizon_s
    from alerts.rules.catalog import RULES

    rules = [r for r in RULES if r.rule_id != "adherence.no_readings"]  # 35 d: beyond the data
    cols, _ = _columns(rows)
    horizon = horizon_s(rules)
    assert horizon < 20 * DAY
    trimmed = cols.take(cols.measured_at_s >= NOW_S - horizon)  # type: ignore[attr-defined]
    full = evaluate_all(cols, NOW_S, prior=no_prior_state(), rules=rules)  # type: ignore[arg-type]
    cut = evaluate_all(trimmed, NOW_S, prior=no_prior_state(), rules=rules)
    for a, b in zip(full, cut, strict=True):
        assert a.status.tolist() == b.status.tolist(), a.rule.rule_id
