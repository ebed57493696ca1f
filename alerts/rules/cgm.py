"""CGM rules: time in range, time below range and glycaemic variability over 14 days, weighted
by time as the International Consensus on Time in Range defines them (Battelino et al.,
Diabetes Care 2019;42:1593): > 70 % of the time in 3.9-10.0 mmol/L, < 4 % below 3.9 mmol/L,
CV <= 36 %; the metrics need >= 70 % of the 14 days' possible readings (pure).

A CGM records every few minutes (5 min, 15 min for some sensors), and readings go missing
(sensor warm-up, dropouts not back-filled). Each reading therefore stands for the time until
the patient's next CGM reading, at most `max_interval_min` (the longest cadence we accept: a
longer gap is time without data, not time at the last value); the newest stands for the time
until now, with the same cap. Wear is that covered time over the window. Meter LO/HI specials
count as below/above range (never as numbers), NaN/NRes results and implausible readings not
at all. Fingerstick readings never count here (`glucose.*` rules use their reading-count
proxies).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.glucose import DAY_S, HOUR_S, window_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import at, last_row, per_patient_sum, value_at

MINUTE_S = 60


def cgm_rows(cols: ReadingColumns, now_s: int, window_s: FloatArray | float) -> BoolArray:
    """CGM readings with a result (number, LO or HI), plausible, in (now - window, now]."""
    t = cols.measured_at_s
    rows: BoolArray = (
        (cols.kind == KindCode.CGM_GLUCOSE)
        & ~cols.implausible
        & (cols.glucose_special != SpecialCode.INVALID)
        & (t <= now_s)
        & (t > now_s - window_s)
    )
    return rows


def covered_s(patient: IntArray, t: IntArray, now_s: int, cap_s: FloatArray) -> FloatArray:
    """Per row (sorted by patient and time), the time it stands for: until the same patient's
    next row, or now for the newest, at most `cap_s` (per row)."""
    n = t.shape[0]
    following = np.full(n, float(now_s))
    if n > 1:
        same = patient[1:] == patient[:-1]
        following[:-1] = np.where(same, t[1:], float(now_s))
    weight: FloatArray = np.minimum(following - t, cap_s)
    return weight


def time_in_ranges(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
) -> RuleResult:
    """`cgm.tir_14d`, `cgm.tbr_14d` or `cgm.cv_14d` at now (see the module doc).

    Insufficient data (no opening, no resolving) while the covered time is below `min_wear`
    of the window, or the newest reading is older than `fresh_h`.

    Raises:
        KeyError: `rule` is not one of the three.
    """
    n_pat = cols.n_patients
    p_all = cols.patient
    in_window = cgm_rows(cols, now_s, at(params["window_d"], p_all) * DAY_S)
    rows = np.flatnonzero(in_window)
    p = cols.patient[rows]
    t = cols.measured_at_s[rows]
    v = cols.glucose_mmol_l[rows]
    special = cols.glucose_special[rows]
    w = covered_s(p, t, now_s, params["max_interval_min"][p] * MINUTE_S)
    covered = per_patient_sum(p, w, n_pat)
    wear = covered / (params["window_d"] * DAY_S)
    newest = last_row(p_all, in_window, n_pat)
    fresh = (newest >= 0) & (
        value_at(cols.measured_at_s, newest, 0) >= now_s - params["fresh_h"] * HOUR_S
    )
    enough = fresh & (wear >= params["min_wear"])
    stats: dict[str, FloatArray] = {
        "readings": np.bincount(p, minlength=n_pat).astype(np.float64),
        "wear_share": wear,
        "covered_h": covered / HOUR_S,
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule.rule_id == "cgm.tir_14d":
            in_range = (
                (special == SpecialCode.NONE)
                & (v >= params["low_mmol_l"][p])
                & (v <= params["high_mmol_l"][p])
            )
            share = per_patient_sum(p, np.where(in_range, w, 0.0), n_pat) / covered
            stats["time_in_range"] = share
            severity = 1.0 - share
            opens = share < params["min_share"]
            keeps = share < params["clear_share"]
        elif rule.rule_id == "cgm.tbr_14d":
            below = (special == SpecialCode.LO) | (
                (special == SpecialCode.NONE) & (v < params["low_mmol_l"][p])
            )
            share = per_patient_sum(p, np.where(below, w, 0.0), n_pat) / covered
            stats["time_below_range"] = share
            severity = share
            opens = share > params["max_share"]
            keeps = share > params["clear_share"]
        elif rule.rule_id == "cgm.cv_14d":
            numeric = special == SpecialCode.NONE
            wn = np.where(numeric, w, 0.0)
            vn = np.where(numeric, v, 0.0)
            total = per_patient_sum(p, wn, n_pat)
            mean = per_patient_sum(p, wn * vn, n_pat) / total
            dev = np.where(numeric, vn - mean[p], 0.0)
            sd = np.sqrt(per_patient_sum(p, wn * dev * dev, n_pat) / total)
            cv = np.where(mean > 0, sd / mean, np.nan)
            stats.update(mean_mmol_l=mean, cv=cv)
            severity = cv
            opens = cv > params["max_cv"]
            keeps = cv > params["clear_cv"]
        else:
            raise KeyError(rule.rule_id)
    return window_result(
        rule, cols, in_window=in_window, newest=newest, enough=enough, opens=opens,
        keeps=keeps, stats=stats, params=params, was_active=was_active, severity=severity,
    )  # fmt: skip
