"""Blood-pressure rules: per-reading crisis (with its re-measure step) and hypotension, and the
home-monitoring protocols as named, versioned rules.

Sources: AHA "hypertensive crisis" (>= 180 and/or >= 120 mmHg; wait 1-2 min and re-measure),
NHLBI (recheck after 5 min); AHA low blood pressure (< 90/60); the home protocols as collected
in docs/clinical-rules.md section 4: `esh_7day_drop_day1` (7 days, day 1 discarded, morning and
evening readings averaged, >= 135/85 uncontrolled), `aha_ama_2020` (7 days, all readings averaged,
at least 3 days and 12 readings), `china_2019` (morning 06-09 and evening 18-21 readings, day 1
discarded, >= 3 days acceptable, >= 135/85).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.glucose import DAY_S, HOUR_S, reading_rule_result, window_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import (
    at,
    distinct_days,
    first_row,
    last_row,
    per_patient_count,
    per_patient_sum,
)

# Protocol time slots, local hours inclusive: (4, 11) is 04:00-11:59. ESH: morning before
# medication and evening; the Chinese guideline names 06-09 and 18-21.
ESH_MORNING_H = (4, 11)
ESH_EVENING_H = (16, 23)
CHINA_MORNING_H = (6, 9)
CHINA_EVENING_H = (18, 21)


def bp_rows(cols: ReadingColumns, now_s: int) -> BoolArray:
    """Rows that are blood-pressure results with both pressures, at or before now."""
    rows: BoolArray = (
        (cols.kind == KindCode.BLOOD_PRESSURE)
        & np.isfinite(cols.systolic_mmhg)
        & np.isfinite(cols.diastolic_mmhg)
        & (cols.measured_at_s <= now_s)
    )
    return rows


def crisis(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
) -> RuleResult:
    """`bp.crisis`: a severe reading confirmed by a re-measurement, or left unconfirmed.

    A severe reading (systolic >= 180 or diastolic >= 120) triggers when the next reading
    within `confirm_within_min` is severe too (confirmed), when it confirms the previous one,
    or when no reading followed within that time (unconfirmed: a severe reading nobody
    re-measured is not assumed fine). A non-severe re-measurement within the time clears it.
    While the re-measure time has not passed, a lone severe reading waits (no alert yet).
    """
    p = cols.patient
    t = cols.measured_at_s
    rows = bp_rows(cols, now_s) & (t > now_s - at(params["max_age_h"], p) * HOUR_S)
    sel = np.flatnonzero(rows)
    ps = p[sel]
    ts = t[sel]
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
    trigger_sel = severe & (
        (has_next & next_severe) | prev_severe_within | (~has_next & waited_out)
    )
    trigger = np.zeros(len(cols), dtype=np.bool_)
    trigger[sel] = trigger_sel
    clear = (cols.systolic_mmhg < at(params["clear_systolic_mmhg"], p)) & (
        cols.diastolic_mmhg < at(params["clear_diastolic_mmhg"], p)
    )
    result = reading_rule_result(
        rule, cols, rows=rows, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row,
    )  # fmt: skip
    confirmed = np.zeros(len(cols), dtype=np.bool_)
    confirmed[sel] = trigger_sel & (prev_severe_within | (has_next & next_severe))
    n_pat = cols.n_patients
    stats = dict(result.stats)
    stats["confirmed_readings"] = per_patient_count(p, confirmed, n_pat).astype(np.float64)
    stats["symptom_readings"] = per_patient_count(p, trigger & cols.symptoms, n_pat).astype(
        np.float64
    )
    pending = np.zeros(len(cols), dtype=np.bool_)
    pending[sel] = severe & ~has_next & ~waited_out
    stats["awaiting_remeasure"] = per_patient_count(p, pending, n_pat).astype(np.float64)
    return RuleResult(
        rule, result.status, result.anchor_row, result.evidence_mask, stats, params,
        closed=result.closed,
    )  # fmt: skip


def hypotension(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
) -> RuleResult:
    """`bp.hypotension`: systolic < 90 or diastolic < 60 mmHg on a fresh reading."""
    p = cols.patient
    rows = bp_rows(cols, now_s) & (cols.measured_at_s > now_s - at(params["max_age_h"], p) * HOUR_S)
    sys = cols.systolic_mmhg
    dia = cols.diastolic_mmhg
    trigger = (sys < at(params["systolic_mmhg"], p)) | (dia < at(params["diastolic_mmhg"], p))
    clear = (sys >= at(params["clear_systolic_mmhg"], p)) & (
        dia >= at(params["clear_diastolic_mmhg"], p)
    )
    return reading_rule_result(
        rule, cols, rows=rows, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row,
    )  # fmt: skip


def home_protocol(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
) -> RuleResult:
    """`bp.home_esh_7d`, `bp.home_aha_ama_2020` or `bp.home_china_2019` over the last 7 local
    days (today and the 6 before; local time = UTC + `utc_offset_min`).

    Readings flagged for movement, cuff fit or position are dropped (docs/clinical-rules.md section
    4). "Day 1" is the first day with readings in the window. Insufficient data when fewer than
    `min_readings` readings on `min_days` distinct days remain.

    Raises:
        KeyError: `rule` is not one of the three protocols.
    """
    n_pat = cols.n_patients
    offsets_min = params["utc_offset_min"]
    max_off_s = int(np.abs(offsets_min).max() * 60) if offsets_min.size else 0
    # Work on the recent cuff readings only (8 days covers 7 local days at any offset).
    cand = np.flatnonzero(
        bp_rows(cols, now_s)
        & ~cols.bp_flagged
        & (cols.measured_at_s >= now_s - 8 * DAY_S - max_off_s)
    )
    ps = cols.patient[cand]
    offset_s = np.asarray(at(offsets_min, ps) * 60.0).astype(np.int64)
    local_s = cols.measured_at_s[cand] + offset_s
    day = local_s // DAY_S
    hour = (local_s % DAY_S) // HOUR_S
    keep = day >= (now_s + offset_s) // DAY_S - 6
    if rule.rule_id == "bp.home_esh_7d":
        keep &= _slot(hour, ESH_MORNING_H) | _slot(hour, ESH_EVENING_H)
        keep &= _not_first_day(ps, day, keep, n_pat)
    elif rule.rule_id == "bp.home_china_2019":
        keep &= _slot(hour, CHINA_MORNING_H) | _slot(hour, CHINA_EVENING_H)
        keep &= _not_first_day(ps, day, keep, n_pat)
    elif rule.rule_id != "bp.home_aha_ama_2020":
        raise KeyError(rule.rule_id)
    n = per_patient_count(ps, keep, n_pat)
    days = distinct_days(ps, day, keep, n_pat)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sys = per_patient_sum(ps[keep], cols.systolic_mmhg[cand[keep]], n_pat) / n
        mean_dia = per_patient_sum(ps[keep], cols.diastolic_mmhg[cand[keep]], n_pat) / n
    rows = np.zeros(len(cols), dtype=np.bool_)
    rows[cand[keep]] = True
    last = last_row(ps, keep, n_pat)
    newest = np.where(last >= 0, np.append(cand, -1)[last], -1)
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
    return window_result(
        rule, cols, in_window=rows, newest=newest, enough=enough, opens=opens,
        keeps=keeps, stats=stats, params=params, was_active=was_active,
    )  # fmt: skip


def _slot(hour: IntArray, bounds: tuple[int, int]) -> BoolArray:
    mask: BoolArray = (hour >= bounds[0]) & (hour <= bounds[1])
    return mask


def _not_first_day(p: IntArray, day: IntArray, rows: BoolArray, n_pat: int) -> BoolArray:
    first = first_row(p, rows, n_pat)
    first_day = np.append(day, np.iinfo(np.int64).max)[first]  # -1 (no rows) picks the sentinel
    mask: BoolArray = day > first_day[p]
    return mask
