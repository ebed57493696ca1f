"""Adherence: no reading for `max_gap_d` days from a device the patient uses.

A patient is expected to measure a kind when the care plan says so (`expects_glucose`,
`expects_blood_pressure` = 1) or, by default (-1), when they measured it within `lookback_d`.
This is about the *patient's measurements* (measured_at), kept apart from gateway liveness
and pipeline delay: while a hub of the patient is offline (`Context.hub_offline`, an open
`technical.hub_offline` finding) the silence is the hub's, so the status is "insufficient data"
(nothing opens, an open episode is left alone; the technical finding is what the care team
gets), and the runner passes a `now` no later than what the pipeline has caught up to. N is a
care-plan value, a local default, not a guideline figure. Implausible readings count here: the
patient did measure.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alerts.rules.catalog import FloatArray, Rule
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.glucose import DAY_S, window_result
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import last_row, value_at

SUBJECTS = {KindCode.GLUCOSE: "glucose", KindCode.BLOOD_PRESSURE: "blood_pressure"}


def no_readings(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
    kind: KindCode,
) -> RuleResult:
    """`adherence.no_readings` for one kind (the result's `subject` is the kind).

    Raises:
        KeyError: `kind` is neither glucose nor blood pressure.
    """
    subject = SUBJECTS[kind]
    p = cols.patient
    n_pat = cols.n_patients
    t = cols.measured_at_s
    rows = (cols.kind == kind) & ~cols.control_solution & (t <= now_s)
    newest = last_row(p, rows, n_pat)
    has = newest >= 0
    gap_d = np.where(has, (now_s - value_at(t, newest, 0)) / DAY_S, np.inf)
    expects = params[f"expects_{subject}"]
    expected = np.where(expects < 0, gap_d <= params["lookback_d"], expects > 0)
    hub_offline = (
        np.zeros(n_pat, dtype=np.bool_) if context.hub_offline is None else context.hub_offline
    )
    opens = gap_d > params["max_gap_d"]
    evidence = np.zeros(len(cols), dtype=np.bool_)
    evidence[newest[has]] = True
    stats = {"days_since_last_reading": gap_d}
    return window_result(
        rule, cols, in_window=evidence, newest=newest, enough=expected & ~hub_offline,
        opens=opens, keeps=opens,
        stats=stats, params=params, was_active=was_active, subject=subject,
    )  # fmt: skip
