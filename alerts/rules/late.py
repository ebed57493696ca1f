"""Late findings: a triggering reading that reached the record more than `max_age_h` after it
was taken (a meter back-filled after days away, a hub that was offline).

A per-reading rule never evaluates such a reading live (it is stale the moment it arrives), so
without this a hypo from three days ago would reach nobody. Each per-reading rule therefore has
a second subject, `late`: the finding is active while a late triggering reading arrived within
the last `max_age_h` (measured at most `late_max_age_d` before it arrived); it opens only on a
reading that this evaluation sees for the first time (`Context.new_rows`), so history the
engine already reviewed never opens one; it resolves once no late reading arrived within
`max_age_h`. Its priority is the rule's (raised by symptoms where the rule says so) capped at
`catalog.LATE_PRIORITY_CAP`; the evidence carries the measured and received times.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import LATE_PRIORITY_CAP, PRIORITY_LEVEL, FloatArray, Rule
from alerts.rules.columns import ReadingColumns
from alerts.rules.context import Context
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import Status

SUBJECT = "late"
DAY_S = 86_400
HOUR_S = 3_600


def late_rows(
    cols: ReadingColumns, now_s: int, params: Mapping[str, FloatArray], sel: IntArray
) -> BoolArray:
    """Over the rows `sel`, which arrived late and within the last `max_age_h` (at or before
    now)."""
    ps = cols.patient[sel]
    max_age_s = params["max_age_h"][ps] * HOUR_S
    received = cols.received_at_s[sel]
    delay_s = received - cols.measured_at_s[sel]
    mask: BoolArray = (
        (delay_s > max_age_s)
        & (delay_s <= params["late_max_age_d"][ps] * DAY_S)
        & (received <= now_s)
        & (received > now_s - max_age_s)
    )
    return mask


def late_result(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    sel: IntArray,
    trigger: BoolArray,
    severity: FloatArray,
    context: Context,
    symptoms: BoolArray | None = None,
) -> RuleResult:
    """The late finding of a per-reading rule (see the module doc) over the rows `sel` (the
    readings it may look at); `trigger`, `severity` and `symptoms` are given for those rows."""
    n_pat = cols.n_patients
    keep = trigger & late_rows(cols, now_s, params, sel)
    rows = sel[keep]
    p = cols.patient[rows]
    new = (
        np.ones(rows.shape[0], dtype=np.bool_)
        if context.new_rows is None
        else context.new_rows[rows]
    )
    n_late = np.bincount(p, minlength=n_pat)
    active = np.where(was_active, n_late > 0, np.bincount(p[new], minlength=n_pat) > 0)
    status = np.where(active, Status.ACTIVE, Status.CLEAR).astype(np.int8)
    first_new = np.full(n_pat, -1, dtype=np.int64)
    first_new[p[new][::-1]] = rows[new][::-1]
    anchor = np.where(active & ~was_active, first_new, -1).astype(np.int64)
    worst = np.full(n_pat, np.nan)
    np.fmax.at(worst, p, severity[keep])
    cap = PRIORITY_LEVEL[LATE_PRIORITY_CAP]
    level = np.full(n_pat, min(PRIORITY_LEVEL[rule.priority], cap), dtype=np.int8)
    if symptoms is not None and rule.symptoms_priority is not None:
        raised = np.bincount(p[symptoms[keep]], minlength=n_pat) > 0
        level[raised] = min(PRIORITY_LEVEL[rule.symptoms_priority], cap)
    delay_h = np.full(n_pat, np.nan)
    np.fmax.at(delay_h, p, (cols.received_at_s[rows] - cols.measured_at_s[rows]) / HOUR_S)
    evidence = np.zeros(len(cols), dtype=np.bool_)
    evidence[rows] = True
    stats = {"late_readings": n_late.astype(np.float64), "longest_delay_h": delay_h}
    return RuleResult(
        rule, status, anchor, evidence, stats, params, subject=SUBJECT, severity=worst,
        priority_level=level,
    )  # fmt: skip
