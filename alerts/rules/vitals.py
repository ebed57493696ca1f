"""Wearable and home-vitals rules: sustained low SpO2, sustained tachycardia and bradycardia at
rest, fever, and weight gain in heart failure (pure: no I/O, no clock).

Sources (docs/clinical-rules.md, section "Wearables"):
- `spo2.low_sustained`: SpO2 below 90 % for 5 minutes or more, the sustained-desaturation
  definition of Fletcher et al., Chest 1987;92:604; 88 % for patients at risk of hypercapnic
  respiratory failure (COPD), whose BTS target range is 88-92 % (O'Driscoll et al., BTS
  guideline for oxygen use in adults, Thorax 2017;72:i1).
- `heart_rate.tachycardia_rest`: above 100 /min (2015 ACC/AHA/HRS SVT guideline, Page et al.,
  Circulation 2016;133:e506); `heart_rate.bradycardia_rest`: below 40 /min at night (the 2018
  ACC/AHA/HRS bradycardia guideline, Kusumoto et al., Circulation 2019;140:e382, defines sinus
  bradycardia as < 50 /min and notes lower rates in sleep; 40 at night is a local default).
  "Sustained" is 10 consecutive minutes, "at rest" the patient's local night (00-06 h): the
  per-minute summaries carry no motion data, so the night is the resting proxy (documented as
  such; a care plan can move the window). Heart rate comes from straps (`heart_rate` mean per
  minute) and from oximeters (their pulse).
- `temperature.fever`: >= 38.0 C (CDC definition of fever, 100.4 F).
- `weight.gain_hf_3d`: for heart-failure care plans, a gain of more than 2 kg within 3 days
  (ESC 2021 heart failure guideline and the HFA self-care recommendations, Jaarsma et al.,
  Eur J Heart Fail 2021;23:157).

Sustained rules work on observations: a per-minute summary, or a single measurement, covers
`observation_s` from its time. A run is a sequence of consecutive observations past the
threshold, each within `max_gap_min` of the previous; it is sustained from the observation at
which it has lasted `min_minutes` (first start to last end). It clears the same way, after
`clear_minutes` of observations on the right side of the clearing threshold. Implausible and
control readings never count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.glucose import DAY_S, HOUR_S, reading_rule_result, recent
from alerts.rules.late import late_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import at

MINUTE_S = 60


def sustained(
    patient: IntArray,
    t: IntArray,
    cond: BoolArray,
    *,
    max_gap_s: FloatArray,
    min_s: FloatArray,
    observation_s: FloatArray,
) -> BoolArray:
    """Rows (sorted by patient and time) at which a run of `cond` rows has lasted `min_s`.

    A run starts at a `cond` row whose previous row is another patient's, not `cond`, or more
    than `max_gap_s` earlier; its duration at row i is t[i] + observation_s - t[start]. The
    per-row parameters are given per row.
    """
    n = t.shape[0]
    if not n:
        return np.zeros(0, dtype=np.bool_)
    idx = np.arange(n, dtype=np.int64)
    joined = np.zeros(n, dtype=np.bool_)
    joined[1:] = (patient[1:] == patient[:-1]) & cond[:-1] & (t[1:] - t[:-1] <= max_gap_s[1:])
    start = cond & ~joined
    first = np.maximum.accumulate(np.where(start, idx, -1))
    duration = t + observation_s - t[np.maximum(first, 0)]
    out: BoolArray = cond & (first >= 0) & (duration >= min_s)
    return out


def _vital_sel(
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    values: FloatArray,
    kinds: tuple[KindCode, ...],
    *,
    late: bool,
) -> IntArray:
    """Plausible rows of `kinds` with a finite value, measured (live) or received (`late`)
    within the last `max_age_h`."""
    age_s = at(params["max_age_h"], cols.patient) * HOUR_S
    sel = recent(cols.received_at_s if late else cols.measured_at_s, now_s, age_s)
    ok = (
        np.isin(cols.kind[sel], kinds)
        & ~cols.implausible[sel]
        & ~cols.control_solution[sel]
        & np.isfinite(values[sel])
        & (cols.measured_at_s[sel] <= now_s)
    )
    picked: IntArray = sel[ok]
    return picked


def _sustained_result(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    sel: IntArray,
    past: BoolArray,
    back: BoolArray,
    severity: FloatArray,
    after_row: IntArray | None,
    context: Context,
    late: bool,
) -> RuleResult:
    """Hysteresis of a sustained rule over `sel`: `past` rows are on the alerting side of the
    threshold, `back` rows on the clearing side."""
    ps = cols.patient[sel]
    t = cols.measured_at_s[sel]
    gap_s = params["max_gap_min"][ps] * MINUTE_S
    obs_s = params["observation_s"][ps]
    trigger = sustained(
        ps, t, past, max_gap_s=gap_s, min_s=params["min_minutes"][ps] * MINUTE_S,
        observation_s=obs_s,
    )  # fmt: skip
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger, severity=severity,
            context=context,
        )  # fmt: skip
    clear = sustained(
        ps, t, back, max_gap_s=gap_s, min_s=params["clear_minutes"][ps] * MINUTE_S,
        observation_s=obs_s,
    )  # fmt: skip
    return reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row, severity=np.where(trigger, severity, np.nan),
    )  # fmt: skip


def spo2_low(
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
    """`spo2.low_sustained` over per-minute means and spot-checks (or, `late`, its late
    finding). Severity: percentage points below the threshold of the lowest observation."""
    values = cols.spo2_pct
    sel = _vital_sel(cols, now_s, params, values, (KindCode.SPO2,), late=late)
    ps = cols.patient[sel]
    v = values[sel]
    below = params["below_pct"][ps]
    return _sustained_result(
        rule, cols, now_s, params, was_active, sel=sel, past=v < below,
        back=v >= params["clear_at_pct"][ps], severity=below - v, after_row=after_row,
        context=context, late=late,
    )  # fmt: skip


def heart_rate_at_rest(
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
    """`heart_rate.tachycardia_rest` or `heart_rate.bradycardia_rest`: the per-minute heart
    rate of straps and the pulse of oximeters, in the patient's local rest window (hours
    `rest_from_h` to `rest_to_h`, wrapping past midnight when from > to). Severity: /min past
    the threshold.

    Raises:
        KeyError: `rule` is neither of the two.
    """
    rate = np.where(cols.kind == KindCode.SPO2, cols.pulse_per_min, cols.heart_rate_per_min)
    kinds = (KindCode.HEART_RATE, KindCode.SPO2)
    sel = _vital_sel(cols, now_s, params, rate, kinds, late=late)
    ps = cols.patient[sel]
    t = cols.measured_at_s[sel]
    v = rate[sel]
    offset_s = context.clock.offsets_s(ps, t, cols.utc_offset_min[sel], params["utc_offset_min"])
    hour = ((t + offset_s) % DAY_S) / HOUR_S
    lo, hi = params["rest_from_h"][ps], params["rest_to_h"][ps]
    resting = np.where(lo <= hi, (hour >= lo) & (hour < hi), (hour >= lo) | (hour < hi))
    if rule.rule_id == "heart_rate.tachycardia_rest":
        limit = params["above_per_min"][ps]
        past = resting & (v > limit)
        back = resting & (v <= params["clear_at_per_min"][ps])
        severity = v - limit
    elif rule.rule_id == "heart_rate.bradycardia_rest":
        limit = params["below_per_min"][ps]
        past = resting & (v < limit)
        back = resting & (v >= params["clear_at_per_min"][ps])
        severity = limit - v
    else:
        raise KeyError(rule.rule_id)
    return _sustained_result(
        rule, cols, now_s, params, was_active, sel=sel, past=past, back=back,
        severity=severity, after_row=after_row, context=context, late=late,
    )  # fmt: skip


def fever(
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
    """`temperature.fever`: a fresh reading >= `above_c` (or, `late`, its late finding); clears
    on a reading below `clear_below_c`. Severity: degrees above the threshold."""
    values = cols.body_temperature_c
    sel = _vital_sel(cols, now_s, params, values, (KindCode.BODY_TEMPERATURE,), late=late)
    ps = cols.patient[sel]
    v = values[sel]
    limit = params["above_c"][ps]
    trigger = v >= limit
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger,
            severity=v - limit, context=context,
        )  # fmt: skip
    return reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=v < params["clear_below_c"][ps],
        params=params, was_active=was_active, after_row=after_row, severity=v - limit,
    )  # fmt: skip


def range_min(values: FloatArray, start: IntArray, stop: IntArray) -> FloatArray:
    """min(values[start[i]:stop[i]]) for every i (NaN for an empty range), by a sparse table:
    O(n log n) whole-array steps whatever the ranges' lengths."""
    n = values.shape[0]
    out = np.full(start.shape[0], np.nan)
    if not n or not start.size:
        return out
    levels = [values]
    width = 1
    while 2 * width <= n:
        prev = levels[-1]
        levels.append(np.fmin(prev[: n - 2 * width + 1], prev[width : n - width + 1]))
        width *= 2
    length = stop - start
    has = length > 0
    level = np.zeros(start.shape[0], dtype=np.int64)
    level[has] = np.floor(np.log2(length[has])).astype(np.int64)
    for k in np.unique(level[has]).tolist():
        rows = np.flatnonzero(has & (level == k))
        table = levels[k]
        out[rows] = np.fmin(table[start[rows]], table[stop[rows] - (1 << k)])
    return out


def weight_gain(
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
    """`weight.gain_hf_3d`: for patients whose care plan enables it (heart failure), a fresh
    weight more than `gain_kg` above the lowest weight of the `window_h` before it; clears on
    a weight at most `clear_gain_kg` above that baseline (or, `late`, its late finding).
    Severity: kg past the threshold. Statistics: `gain_kg` of the newest weight."""
    values = cols.body_weight_kg
    weights = np.flatnonzero(
        (cols.kind == KindCode.BODY_WEIGHT)
        & ~cols.implausible
        & np.isfinite(values)
        & (cols.measured_at_s <= now_s)
    )
    sel = _vital_sel(cols, now_s, params, values, (KindCode.BODY_WEIGHT,), late=late)
    ps = cols.patient[sel]
    # The baseline: the lowest weight among the patient's weights in [t - window, t).
    key_w = cols.key[weights]
    key_s = cols.key[sel]
    start = np.searchsorted(key_w, key_s - (params["window_h"][ps] * HOUR_S).astype(np.int64))
    stop = np.searchsorted(key_w, key_s, side="left")
    baseline = range_min(values[weights], start, stop)
    with np.errstate(invalid="ignore"):
        gain = values[sel] - baseline
        enabled = params["enabled"][ps] > 0
        limit = params["gain_kg"][ps]
        trigger = enabled & (gain > limit)
        clear = ~enabled | (gain <= params["clear_gain_kg"][ps])
    if late:
        return late_result(
            rule, cols, now_s, params, was_active, sel=sel, trigger=trigger,
            severity=gain - limit, context=context,
        )  # fmt: skip
    result = reading_rule_result(
        rule, cols, sel=sel, trigger=trigger, clear=clear, params=params,
        was_active=was_active, after_row=after_row, severity=gain - limit,
    )  # fmt: skip
    newest_gain = np.full(cols.n_patients, np.nan)
    newest_gain[ps] = gain  # rows ascend: the patient's newest weight wins
    return RuleResult(
        result.rule, result.status, result.anchor_row, result.evidence_mask,
        {**result.stats, "gain_kg": newest_gain}, result.params, closed=result.closed,
        severity=result.severity,
    )  # fmt: skip
