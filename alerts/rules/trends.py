"""Trend rules: Theil-Sen slope of systolic pressure and of fasting glucose over 14 days.

The slope is the median of the pairwise slopes (Sen 1968), exactly as
`scipy.stats.theilslopes` computes it (pairs with equal times are skipped); here it runs for
all patients at once on padded (patients x readings) blocks, in chunks that bound memory.
The tests check it against `scipy.stats.theilslopes` patient by patient. Thresholds are
local defaults for care-plan review, not guideline figures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.bp import bp_rows
from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import MealCode, ReadingColumns, SpecialCode
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.glucose import DAY_S, HOUR_S, glucose_rows, window_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import at, last_row, per_patient_count, value_at

# Elements of one padded pairwise block (patients x n x n float64): about 64 MiB.
BLOCK_ELEMENTS = 8_000_000


def theil_sen_slopes(
    patient: IntArray, x: FloatArray, y: FloatArray, n_patients: int
) -> FloatArray:
    """Median pairwise slope dy/dx per patient over rows sorted by (patient, x); NaN if no pair.

    Rows with equal x are not paired (as in scipy); NaN x or y must be filtered out first.
    """
    out = np.full(n_patients, np.nan)
    counts = np.bincount(patient, minlength=n_patients)
    present = np.flatnonzero(counts >= 2)
    if present.size == 0:
        return out
    starts = np.searchsorted(patient, present, side="left")
    order = np.argsort(counts[present], kind="stable")
    present, starts = present[order], starts[order]
    i = 0
    while i < present.size:
        width = int(counts[present[min(i + 1, present.size) - 1]])
        # Grow the chunk while the widest member keeps the block under BLOCK_ELEMENTS.
        j = i + 1
        while j < present.size:
            w = int(counts[present[j]])
            if (j - i + 1) * w * (w - 1) // 2 > BLOCK_ELEMENTS:
                break
            width = w
            j += 1
        chunk, chunk_starts = present[i:j], starts[i:j]
        cols_idx = np.arange(width)
        valid = cols_idx[None, :] < counts[chunk][:, None]
        idx = np.where(valid, chunk_starts[:, None] + cols_idx[None, :], 0)
        xs = np.where(valid, x[idx], np.nan)
        ys = np.where(valid, y[idx], np.nan)
        # Each unordered pair once (j > i): rows are sorted by time, so dx >= 0 and the pairs
        # scipy keeps (dx > 0) are those here with dx > 0; NaN padding never compares true.
        first, second = np.triu_indices(width, k=1)
        dx = xs[:, second] - xs[:, first]
        pair = dx > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = np.where(
                pair, (ys[:, second] - ys[:, first]) / np.where(pair, dx, 1.0), np.inf
            )
        slopes.sort(axis=1)
        m = pair.sum(axis=1)
        lo = np.take_along_axis(slopes, np.maximum((m - 1) // 2, 0)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(slopes, np.minimum(m // 2, slopes.shape[1] - 1)[:, None], axis=1)[
            :, 0
        ]
        out[chunk] = np.where(m > 0, (lo + hi) / 2.0, np.nan)
        i = j
    return out


def trend(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
) -> RuleResult:
    """`bp.trend_14d` (systolic) or `glucose.fasting_trend_14d` (fasting glucose).

    Slope in units per day over the window; insufficient data below `min_readings`, when the
    readings span less than `min_span_d` days or the newest is older than `fresh_h`.

    Raises:
        KeyError: `rule` is not one of the two trend rules.
    """
    p = cols.patient
    n_pat = cols.n_patients
    t = cols.measured_at_s
    if rule.rule_id == "bp.trend_14d":
        rows = bp_rows(cols, now_s) & ~cols.bp_flagged
        y = cols.systolic_mmhg
        limit, clear = "max_slope_mmhg_per_d", "clear_slope_mmhg_per_d"
    elif rule.rule_id == "glucose.fasting_trend_14d":
        rows = (
            glucose_rows(cols, now_s)
            & (cols.meal == MealCode.FASTING)
            & (cols.glucose_special == SpecialCode.NONE)
        )
        y = cols.glucose_mmol_l
        limit, clear = "max_slope_mmol_l_per_d", "clear_slope_mmol_l_per_d"
    else:
        raise KeyError(rule.rule_id)
    rows &= t >= now_s - at(params["window_d"], p) * DAY_S
    sel = np.flatnonzero(rows)
    x_days = (t[sel] - now_s) / DAY_S
    slope = theil_sen_slopes(p[sel], x_days, y[sel], n_pat)
    n = per_patient_count(p, rows, n_pat)
    first = np.full(n_pat, np.nan)
    first[p[sel][::-1]] = x_days[::-1]
    newest = last_row(p, rows, n_pat)
    last = np.full(n_pat, np.nan)
    last[p[sel]] = x_days
    span = last - first
    fresh = (newest >= 0) & (value_at(t, newest, 0) >= now_s - params["fresh_h"] * HOUR_S)
    with np.errstate(invalid="ignore"):
        enough = fresh & (n >= params["min_readings"]) & (span >= params["min_span_d"])
        opens = slope > params[limit]
        keeps = slope > params[clear]
    stats = {"readings": n.astype(np.float64), "span_d": span, "slope_per_d": slope}
    return window_result(
        rule, cols, in_window=rows, newest=newest, enough=enough, opens=opens, keeps=keeps,
        stats=stats, params=params, was_active=was_active, severity=slope,
    )  # fmt: skip
