"""Glucose rules: per-reading hypo/hyperglycaemia and 14/7-day window statistics.

Sources: ADA Standards of Care 2024 Sec. 6 (hypoglycaemia levels 1 and 2, pre-prandial target);
Battelino et al. 2019 (time in range 3.9-10.0 mmol/L > 70 %, below range < 4 %, CV <= 36 %,
> 13.9 mmol/L level 2 hyperglycaemia). Our meters are fingerstick: window shares are shares of
*readings* (a reading-count proxy), not CGM time. Meter HI/LO results (+INF/-INF) count as
above/below every threshold and never as numbers; NaN/NRes results, ketone readings and
control-solution results are never evaluated as glucose, and neither are implausible readings
(`alerts.rules.plausibility`). Per-reading rules raise a late finding (subject `late`,
`alerts.rules.late`) for a triggering reading that arrived after `max_age_h`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import MG70, PRIORITY_LEVEL, FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.late import late_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.row_pass import GLUCOSE_ROWS, fresh_rows
from alerts.rules.segments import (
    Status,
    at,
    hysteresis_state,
    last_row,
    per_patient_count,
    runs,
    value_at,
)
from alerts.rules.trailing import trailing_window
from alerts.rules.window_pass import shared_window_stats

DAY_S = 86_400
HOUR_S = 3_600
WINDOW_RULES = frozenset(
    {"glucose.tir_14d", "glucose.tbr_14d", "glucose.cv_14d", "glucose.fasting_mean_7d"}
)
# For the severity of an episode only: a meter's LO counts as 0 mmol/L, its HI as 40 mmol/L
# (above the 600 mg/dL top of any home meter's measuring interval).
LO_AS_MMOL_L = 0.0
HI_AS_MMOL_L = 40.0


def glucose_rows(cols: ReadingColumns, now_s: int) -> BoolArray:
    """Rows that are patient glucose results at or before now (no ketone, no control solution,
    no NaN/NRes result, nothing implausible)."""
    rows: BoolArray = (
        (cols.kind == KindCode.GLUCOSE)
        & ~cols.control_solution
        & ~cols.implausible
        & (cols.glucose_special != SpecialCode.INVALID)
        & (cols.measured_at_s <= now_s)
    )
    return rows


def recent(times: IntArray, now_s: int, age_s: FloatArray | float) -> IntArray:
    """Rows whose time (measured or received) lies in (now - age, now], ascending."""
    rows: IntArray = np.flatnonzero((times > now_s - age_s) & (times <= now_s))
    return rows


def glucose_ok(cols: ReadingColumns, sel: IntArray, now_s: int) -> BoolArray:
    """`glucose_rows` for the rows `sel` only (a mask over `sel`)."""
    mask: BoolArray = (
        (cols.kind[sel] == KindCode.GLUCOSE)
        & ~cols.control_solution[sel]
        & ~cols.implausible[sel]
        & (cols.glucose_special[sel] != SpecialCode.INVALID)
        & (cols.measured_at_s[sel] <= now_s)
    )
    return mask


def per_reading(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
    late: bool = False,
) -> RuleResult:
    """`glucose.hypo_l2`, `glucose.hypo_l1` or `glucose.hyper` over the fresh readings, or
    (`late`) the rule's late finding.

    Only readings measured within `max_age_h` before now are evaluated (never fire on stale
    data); an episode opens on a triggering reading and resolves on a clearing one
    (hysteresis: the clearing threshold is past the triggering one). Severity: how far the
    worst reading of the episode lies past the threshold, in mmol/L.

    Raises:
        KeyError: `rule` is not one of the three per-reading glucose rules.
    """
    sel = fresh_rows(cols, now_s, GLUCOSE_ROWS, params, late=late, starts=context.starts)
    ps = cols.patient[sel]
    v = cols.glucose_mmol_l[sel]
    hi = cols.glucose_special[sel] == SpecialCode.HI
    lo = cols.glucose_special[sel] == SpecialCode.LO
    with np.errstate(invalid="ignore"):
        if rule.rule_id == "glucose.hypo_l2":
            below = params["below_mmol_l"][ps]
            trigger = (v < below) | lo
            clear = (v >= params["clear_at_mmol_l"][ps]) | hi
            severity = below - np.where(lo, LO_AS_MMOL_L, v)
        elif rule.rule_id == "glucose.hypo_l1":
            below = params["below_mmol_l"][ps]
            trigger = (v < below) & (v >= params["floor_mmol_l"][ps])
            clear = (v >= params["clear_at_mmol_l"][ps]) | hi
            severity = below - v
        elif rule.rule_id == "glucose.hyper":
            above = params["above_mmol_l"][ps]
            trigger = (v > above) | hi
            clear = (v < params["clear_at_mmol_l"][ps]) | lo
            severity = np.where(hi, HI_AS_MMOL_L, v) - above
        else:
            raise KeyError(rule.rule_id)
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger, severity=severity,
            context=context,
        )  # fmt: skip
    return reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row, severity=severity,
    )  # fmt: skip


def reading_rule_result(
    rule: Rule,
    cols: ReadingColumns,
    *,
    sel: IntArray,
    trigger: BoolArray,
    clear: BoolArray,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    after_row: IntArray | None = None,
    severity: FloatArray | None = None,
    symptoms: BoolArray | None = None,
) -> RuleResult:
    """Hysteresis over the rows `sel` (ascending), as a `RuleResult` (shared by glucose and
    BP); `trigger`, `clear`, `severity` and `symptoms` are given for those rows only.

    `after_row[p]` (if given, -1 = none) restricts patient p to rows after that one: the
    anchor reading of the episode already open, so readings it already accounted for are not
    replayed against its carried state. `severity` gives the episode's severity, the worst of
    its triggering readings among these rows; `symptoms` raises the priority to
    `rule.symptoms_priority` when a triggering reading of the episode has it.
    """
    n_pat = cols.n_patients
    if after_row is not None:
        keep = sel > after_row[cols.patient[sel]]
        sel, trigger, clear = sel[keep], trigger[keep], clear[keep]
        severity = None if severity is None else severity[keep]
        symptoms = None if symptoms is None else symptoms[keep]
    p = cols.patient[sel]
    state = hysteresis_state(p, trigger, clear & ~trigger, was_active)
    r = runs(p, state, was_active)
    open_run = r.end_row < 0
    anchor = np.full(n_pat, -1, dtype=np.int64)
    anchor[r.patient[open_run]] = sel[r.first_row[open_run]]
    final = was_active.copy()
    last = last_row(p, np.ones(p.shape[0], dtype=np.bool_), n_pat)
    has = last >= 0
    final[has] = state[last[has]]
    status = np.where(final, Status.ACTIVE, Status.CLEAR).astype(np.int8)
    evidence = np.zeros(len(cols), dtype=np.bool_)
    evidence[sel] = trigger
    closed_mask = r.end_row >= 0
    closed = type(r)(
        sel[r.first_row[closed_mask]],
        sel[r.end_row[closed_mask]],
        r.patient[closed_mask],
        np.where(r.carried_end_row >= 0, np.append(sel, -1)[r.carried_end_row], -1),
    )
    n_fresh = np.bincount(p, minlength=n_pat).astype(np.float64)
    # The open episode's triggering rows: from its anchor (a run opened here) or all (carried).
    current = trigger & final[p] & (sel >= anchor[p])
    worst = None
    if severity is not None:
        worst = np.full(n_pat, np.nan)
        np.fmax.at(worst, p[current], severity[current])
    level = None
    if symptoms is not None and rule.symptoms_priority is not None:
        level = np.full(n_pat, PRIORITY_LEVEL[rule.priority], dtype=np.int8)
        raised = per_patient_count(p, current & symptoms, n_pat) > 0
        level[raised] = PRIORITY_LEVEL[rule.symptoms_priority]
    return RuleResult(
        rule, status, anchor, evidence, {"fresh_readings": n_fresh}, params, closed=closed,
        severity=worst, priority_level=level,
    )  # fmt: skip


def windows(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
) -> RuleResult:
    """`glucose.tir_14d`, `glucose.tbr_14d`, `glucose.cv_14d` or `glucose.fasting_mean_7d`.

    Insufficient data (no opening, no resolving) when the window holds fewer than
    `min_readings` readings, readings on fewer than `min_days` distinct days (14-day rules:
    the consensus asks for 14 days at >= 70 % wear, so 10 of 14 days), or its newest reading
    is older than `fresh_h`.

    Raises:
        KeyError: `rule` is not one of these window rules.
    """
    p = cols.patient
    rule_id = rule.rule_id
    if rule_id not in WINDOW_RULES:
        raise KeyError(rule_id)
    # Each rule names the thresholds it reads, so rules with one window share one pass.
    low = params["low_mmol_l"] if rule_id in ("glucose.tir_14d", "glucose.tbr_14d") else None
    high = params["high_mmol_l"] if rule_id == "glucose.tir_14d" else None
    w = shared_window_stats(
        cols, now_s, from_s=now_s - at(params["window_d"], p) * DAY_S, low=low, high=high,
        fasting=rule_id == "glucose.fasting_mean_7d", starts=context.starts,
        scratch=context.scratch,
    )  # fmt: skip
    in_window = w.evidence
    n = w.count
    newest = w.newest
    t = cols.measured_at_s
    fresh = (newest >= 0) & (value_at(t, newest, 0) >= now_s - params["fresh_h"] * HOUR_S)
    enough = fresh & (n >= params["min_readings"])
    stats: dict[str, FloatArray] = {"readings": n.astype(np.float64)}
    if "min_days" in params:  # data sufficiency: readings on enough distinct (UTC) days
        stats["days"] = w.days.astype(np.float64)
        enough &= w.days >= params["min_days"]
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule_id == "glucose.tir_14d":
            share = w.in_range / n
            stats["share_in_range"] = share
            severity = 1.0 - share
            opens = share < params["min_share"]
            keeps = share < params["clear_share"]
        elif rule_id == "glucose.tbr_14d":
            share = w.below / n
            stats["share_below_range"] = share
            severity = share
            opens = share > params["max_share"]
            keeps = share > params["clear_share"]
        elif rule_id == "glucose.cv_14d":
            m, mean, cv = w.numeric, w.mean, w.cv
            stats.update(numeric_readings=m.astype(np.float64), mean_mmol_l=mean, cv=cv)
            enough &= m >= params["min_readings"]
            severity = cv
            opens = cv > params["max_cv"]
            keeps = cv > params["clear_cv"]
        else:  # glucose.fasting_mean_7d
            mean = w.mean
            stats["fasting_mean_mmol_l"] = mean
            severity = mean
            opens = mean > params["max_mean_mmol_l"]
            keeps = mean > params["clear_mean_mmol_l"]
    return window_result(
        rule,
        cols,
        in_window=in_window,
        newest=newest,
        enough=enough,
        opens=opens,
        keeps=keeps,
        stats=stats,
        params=params,
        was_active=was_active,
        severity=severity,
    )


def window_result(
    rule: Rule,
    cols: ReadingColumns,
    *,
    in_window: BoolArray,
    newest: IntArray,
    enough: BoolArray,
    opens: BoolArray,
    keeps: BoolArray,
    stats: Mapping[str, FloatArray],
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    subject: str = "",
    severity: FloatArray | None = None,
) -> RuleResult:
    """Apply hysteresis at now (open on `opens`, stay open while `keeps`) and package."""
    active = np.where(was_active, keeps, opens)
    status = np.where(~enough, Status.INSUFFICIENT, np.where(active, Status.ACTIVE, Status.CLEAR))
    anchor = np.where(active & enough & ~was_active, newest, -1).astype(np.int64)
    return RuleResult(
        rule, status.astype(np.int8), anchor, in_window, stats, params, subject=subject,
        severity=None if severity is None else np.asarray(severity, dtype=np.float64),
    )  # fmt: skip


def trailing_stats(
    cols: ReadingColumns, window_s: int, low_mmol_l: float = MG70, high_mmol_l: float = 10.0
) -> dict[str, FloatArray]:
    """Trailing-window glucose statistics at every glucose reading (replay, dashboards, bench).

    For each row of `glucose_rows` (all times: no `now`), over the same patient's rows with
    t_i - window_s <= t <= t_i up to and including row i: `readings`, `share_in_range`,
    `mean_mmol_l` and `cv` (sample SD / mean, numeric readings only), computed in one
    compiled pass per patient (`alerts.rules.trailing`). Returned arrays are indexed like the
    selected rows, with `row` giving their index in `cols`.
    """
    sel = np.flatnonzero(glucose_rows(cols, np.iinfo(np.int64).max))
    v = cols.glucose_mmol_l[sel]
    numeric = cols.glucose_special[sel] == SpecialCode.NONE
    stats = trailing_window(
        cols.patient[sel], cols.measured_at_s[sel], v, numeric, n_patients=cols.n_patients,
        window_s=window_s, low=low_mmol_l, high=high_mmol_l,
    )  # fmt: skip
    return {"row": sel.astype(np.float64), **stats}
