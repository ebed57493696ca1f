"""Blood-pressure rules: per-reading crisis (with its re-measure step) and hypotension, and the
home-monitoring protocols as named, versioned rules.

Sources: AHA "hypertensive crisis" (>= 180 and/or >= 120 mmHg; wait 1-2 min and re-measure;
with symptoms of organ damage call emergency services at once), NHLBI (recheck after 5 min);
AHA low blood pressure (< 90/60); the home protocols: `esh_7day_drop_day1` (PMC8109940 table
2: 7 days, day 1 discarded, morning and evening readings averaged, >= 135/85 uncontrolled, or
130/80 with diabetes, coronary heart disease or chronic kidney disease), `aha_ama_2020` (AHA/AMA
2020 policy statement: 7 days, all readings averaged, at least 3 days and 12 readings),
`china_2019` (2019 Chinese HBPM guideline: morning 06-09 and evening 18-21 readings, day 1
discarded, >= 3 days acceptable, >= 135/85). Implausible cuff readings are never evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.glucose import reading_rule_result, window_result
from alerts.rules.late import late_result
from alerts.rules.protocol_pass import protocol_stats
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.row_pass import CUFF_ROWS, fresh_rows

# Protocol time slots, local hours inclusive: (4, 11) is 04:00-11:59. ESH: morning before
# medication and evening; the Chinese guideline names 06-09 and 18-21.
ESH_MORNING_H = (4, 11)
ESH_EVENING_H = (16, 23)
CHINA_MORNING_H = (6, 9)
CHINA_EVENING_H = (18, 21)


def bp_rows(cols: ReadingColumns, now_s: int) -> BoolArray:
    """Rows that are plausible blood-pressure results with both pressures, at or before now."""
    rows: BoolArray = (
        (cols.kind == KindCode.BLOOD_PRESSURE)
        & ~cols.implausible
        & np.isfinite(cols.systolic_mmhg)
        & np.isfinite(cols.diastolic_mmhg)
        & (cols.measured_at_s <= now_s)
    )
    return rows


def bp_ok(cols: ReadingColumns, sel: IntArray, now_s: int) -> BoolArray:
    """`bp_rows` for the rows `sel` only (a mask over `sel`)."""
    mask: BoolArray = (
        (cols.kind[sel] == KindCode.BLOOD_PRESSURE)
        & ~cols.implausible[sel]
        & np.isfinite(cols.systolic_mmhg[sel])
        & np.isfinite(cols.diastolic_mmhg[sel])
        & (cols.measured_at_s[sel] <= now_s)
    )
    return mask


def _bp_sel(
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    *,
    late: bool,
    starts: IntArray | None,
) -> IntArray:
    """Cuff readings (`bp_ok`) measured (live) or received (`late`) within the last
    `max_age_h` (`row_pass.fresh_rows`)."""
    return fresh_rows(cols, now_s, CUFF_ROWS, params, late=late, starts=starts)


def crisis_triggers(
    cols: ReadingColumns, now_s: int, params: Mapping[str, FloatArray], sel: IntArray
) -> tuple[BoolArray, BoolArray, BoolArray]:
    """Over the rows `sel` (cuff readings in time order per patient): which trigger
    `bp.crisis`, which confirm a severe reading, which still await their re-measurement
    (masks over `sel`).

    A severe reading (systolic >= 180 or diastolic >= 120) triggers when the next reading
    within `confirm_within_min` is severe too (confirmed), when it confirms the previous one,
    when no reading followed within that time (unconfirmed: a severe reading nobody
    re-measured is not assumed fine), or at once when it carries the `symptoms` flag (AHA: do
    not wait). A non-severe re-measurement within the time clears it.
    """
    ps = cols.patient[sel]
    ts = cols.measured_at_s[sel]
    symptoms = cols.symptoms[sel]
    severe = (cols.systolic_mmhg[sel] >= params["systolic_mmhg"][ps]) | (
        cols.diastolic_mmhg[sel] >= params["diastolic_mmhg"][ps]
    )
    within_s = params["confirm_within_min"][ps] * 60.0
    n = sel.shape[0]
    has_next = np.zeros(n, dtype=np.bool_)
    if n > 1:
        has_next[:-1] = (ps[1:] == ps[:-1]) & (ts[1:] - ts[:-1] <= within_s[:-1])
    next_severe = np.zeros(n, dtype=np.bool_)
    next_severe[:-1] = severe[1:] if n else next_severe[:-1]
    prev_severe_within = np.zeros(n, dtype=np.bool_)
    prev_severe_within[1:] = has_next[:-1] & severe[:-1]
    waited_out = now_s - ts > within_s
    confirmed = severe & (prev_severe_within | (has_next & next_severe))
    trigger = confirmed | (severe & ((~has_next & waited_out) | symptoms))
    pending = severe & ~has_next & ~waited_out & ~symptoms
    return trigger, confirmed, pending


def _excess(cols: ReadingColumns, sel: IntArray, params: Mapping[str, FloatArray]) -> FloatArray:
    """mmHg past the crisis threshold (the larger of systolic and diastolic), per row of
    `sel`."""
    ps = cols.patient[sel]
    excess: FloatArray = np.fmax(
        cols.systolic_mmhg[sel] - params["systolic_mmhg"][ps],
        cols.diastolic_mmhg[sel] - params["diastolic_mmhg"][ps],
    )
    return excess


def crisis(
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
    """`bp.crisis` (see `crisis_triggers`), or (`late`) its late finding.

    Priority: the rule's (medium: AHA's asymptomatic "urgency", contact the clinician promptly)
    raised to `symptoms_priority` (high: an emergency) when a triggering reading of the episode
    carries `symptoms`. Severity: mmHg past the threshold of the worst reading.
    """
    sel = _bp_sel(cols, now_s, params, late=late, starts=context.starts)
    trigger, confirmed, pending = crisis_triggers(cols, now_s, params, sel)
    symptoms = cols.symptoms[sel]
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger,
            severity=_excess(cols, sel, params), context=context, symptoms=symptoms,
        )  # fmt: skip
    ps = cols.patient[sel]
    clear = (cols.systolic_mmhg[sel] < params["clear_systolic_mmhg"][ps]) & (
        cols.diastolic_mmhg[sel] < params["clear_diastolic_mmhg"][ps]
    )
    result = reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row, severity=_excess(cols, sel, params),
        symptoms=symptoms,
    )  # fmt: skip
    n_pat = cols.n_patients

    def count(mask: BoolArray) -> FloatArray:
        counted: FloatArray = np.bincount(ps[mask], minlength=n_pat).astype(np.float64)
        return counted

    stats = dict(result.stats)
    stats["confirmed_readings"] = count(confirmed & trigger)
    stats["symptom_readings"] = count(trigger & symptoms)
    stats["awaiting_remeasure"] = count(pending)
    return RuleResult(
        rule, result.status, result.anchor_row, result.evidence_mask, stats, params,
        closed=result.closed, severity=result.severity, priority_level=result.priority_level,
    )  # fmt: skip


def hypotension(
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
    """`bp.hypotension`: systolic < 90 or diastolic < 60 mmHg on a fresh reading (or, `late`,
    its late finding). Severity: mmHg below the threshold of the worst reading."""
    sel = _bp_sel(cols, now_s, params, late=late, starts=context.starts)
    ps = cols.patient[sel]
    sys_ = cols.systolic_mmhg[sel]
    dia = cols.diastolic_mmhg[sel]
    limit_sys = params["systolic_mmhg"][ps]
    limit_dia = params["diastolic_mmhg"][ps]
    trigger = (sys_ < limit_sys) | (dia < limit_dia)
    severity = np.fmax(limit_sys - sys_, limit_dia - dia)
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger,
            severity=severity, context=context,
        )  # fmt: skip
    clear = (sys_ >= params["clear_systolic_mmhg"][ps]) & (
        dia >= params["clear_diastolic_mmhg"][ps]
    )
    return reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row, severity=severity,
    )  # fmt: skip


def home_protocol(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
) -> RuleResult:
    """`bp.home_esh_7d`, `bp.home_aha_ama_2020` or `bp.home_china_2019` over the last 7 local
    days (today and the 6 before, in the patient's local time: `alerts.rules.localtime`).

    Readings flagged for movement, cuff fit or position are dropped (the cuff's measurement
    status flags). "Day 1" is the first day with readings in the window. Insufficient data
    when fewer than `min_readings` readings on `min_days` distinct days remain. Severity: mmHg
    of the mean past the goal (the larger of systolic and diastolic).

    Raises:
        KeyError: `rule` is not one of the three protocols.
    """
    slots_h: tuple[tuple[int, int], ...]
    if rule.rule_id == "bp.home_esh_7d":
        slots_h, drop_first_day = (ESH_MORNING_H, ESH_EVENING_H), True
    elif rule.rule_id == "bp.home_china_2019":
        slots_h, drop_first_day = (CHINA_MORNING_H, CHINA_EVENING_H), True
    elif rule.rule_id == "bp.home_aha_ama_2020":
        slots_h, drop_first_day = (), False
    else:
        raise KeyError(rule.rule_id)
    # One compiled pass per patient over the cuff readings of the last 8 days and 14 hours.
    w = protocol_stats(
        cols, now_s, clock=context.clock, override_min=params["utc_offset_min"],
        slots_h=slots_h, drop_first_day=drop_first_day, starts=context.starts,
    )  # fmt: skip
    n, days, newest = w.count, w.days, w.newest
    mean_sys, mean_dia = w.mean_systolic_mmhg, w.mean_diastolic_mmhg
    enough = (n >= params["min_readings"]) & (days >= params["min_days"])
    opens = (mean_sys >= params["systolic_mmhg"]) | (mean_dia >= params["diastolic_mmhg"])
    keeps = (mean_sys >= params["clear_systolic_mmhg"]) | (
        mean_dia >= params["clear_diastolic_mmhg"]
    )
    stats = {
        "readings": n.astype(np.float64),
        "days": days.astype(np.float64),
        "mean_systolic_mmhg": mean_sys,
        "mean_diastolic_mmhg": mean_dia,
    }
    severity = np.fmax(mean_sys - params["systolic_mmhg"], mean_dia - params["diastolic_mmhg"])
    return window_result(
        rule, cols, in_window=w.evidence, newest=newest, enough=enough, opens=opens,
        keeps=keeps, stats=stats, params=params, was_active=was_active, severity=severity,
    )  # fmt: skip
