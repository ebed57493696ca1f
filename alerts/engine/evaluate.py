"""Evaluate every rule for every patient of a columnar window at `now` (pure: no I/O, no clock).

`evaluate_all` runs the kernels of `alerts.rules` (one whole-array pass per rule, no loop over
patients); `evidence_for` turns one patient's result into the evidence a clinician reads: the
rule version, the thresholds used, the statistics and the reading ids behind them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from alerts.rules import adherence, bp, glucose, trends
from alerts.rules.catalog import RULES, Overrides, Rule, resolve_params
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import Status

Kernel = Callable[..., RuleResult]
# (rule_id, subject): the key of one rule's state per patient ("" unless a rule has subjects).
RuleKey = tuple[str, str]
MAX_EVIDENCE_READINGS = 200

KERNELS: Mapping[str, tuple[tuple[str, Kernel], ...]] = {
    "glucose.hypo_l2": (("", glucose.per_reading),),
    "glucose.hypo_l1": (("", glucose.per_reading),),
    "glucose.hyper": (("", glucose.per_reading),),
    "glucose.tir_14d": (("", glucose.windows),),
    "glucose.tbr_14d": (("", glucose.windows),),
    "glucose.cv_14d": (("", glucose.windows),),
    "glucose.fasting_mean_7d": (("", glucose.windows),),
    "bp.crisis": (("", bp.crisis),),
    "bp.hypotension": (("", bp.hypotension),),
    "bp.home_esh_7d": (("", bp.home_protocol),),
    "bp.home_aha_ama_2020": (("", bp.home_protocol),),
    "bp.home_china_2019": (("", bp.home_protocol),),
    "bp.trend_14d": (("", trends.trend),),
    "glucose.fasting_trend_14d": (("", trends.trend),),
    "adherence.no_readings": tuple(
        (subject, partial(adherence.no_readings, kind=kind))
        for kind, subject in adherence.SUBJECTS.items()
        if kind in (KindCode.GLUCOSE, KindCode.BLOOD_PRESSURE)
    ),
}
PER_READING_RULES = frozenset(
    {"glucose.hypo_l2", "glucose.hypo_l1", "glucose.hyper", "bp.crisis", "bp.hypotension"}
)


@dataclass(frozen=True, slots=True)
class PriorState:
    """What the engine knew before this evaluation: per rule key, which patients have an open
    episode and the row of its anchor reading in these columns (-1 if not among them)."""

    was_active: Mapping[RuleKey, BoolArray]
    anchor_row: Mapping[RuleKey, IntArray]


def no_prior_state() -> PriorState:
    """No episode open anywhere (an offline evaluation, or a first run)."""
    return PriorState({}, {})


def evaluate_all(
    cols: ReadingColumns,
    now_s: int,
    *,
    prior: PriorState,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
) -> list[RuleResult]:
    """Evaluate `rules` for all patients of `cols` at `now_s` (seconds since the epoch, UTC).

    Raises:
        RuleParameterError: a care-plan override is unusable.
        KeyError: a rule has no kernel.
    """
    results = []
    none = np.zeros(cols.n_patients, dtype=np.bool_)
    for rule in rules:
        params = resolve_params(rule, cols.patient_ids, overrides or {})
        for subject, kernel in KERNELS[rule.rule_id]:
            key = (rule.rule_id, subject)
            was = prior.was_active.get(key, none)
            after = prior.anchor_row.get(key)
            results.append(kernel(rule, cols, now_s, params, was, after_row=after))
    return results


# History a rule needs besides its window parameters (home protocols: 7 local days).
_PROTOCOL_HISTORY_S = 8 * 86_400


def horizon_s(rules: Iterable[Rule], overrides: Overrides | None = None) -> int:
    """How far back (seconds before now) the given rules look, with the care plan's overrides.

    Evaluating on `cols.take(cols.measured_at_s >= now - horizon_s(...))` gives the same
    results as on all rows, over fewer rows.
    """
    longest = 0.0
    for rule in rules:
        values = dict(rule.params)
        for per_rule in (overrides or {}).values():
            for name, value in per_rule.get(rule.rule_id, {}).items():
                values[name] = max(abs(values.get(name, 0.0)), abs(float(value)))
        longest = max(
            longest,
            values.get("window_d", 0.0) * 86_400,
            values.get("lookback_d", 0.0) * 86_400,
            values.get("max_age_h", 0.0) * 3600 + values.get("confirm_within_min", 0.0) * 60,
            _PROTOCOL_HISTORY_S + abs(values.get("utc_offset_min", 0.0)) * 60
            if "utc_offset_min" in values
            else 0.0,
        )
    return int(longest) + 1


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def evidence_rows(
    result: RuleResult, cols: ReadingColumns, patient: int, from_row: int
) -> IntArray:
    """Rows cited for `patient`: its evidence rows at or after `from_row` (bounded count)."""
    lo = int(np.searchsorted(cols.patient, patient, side="left"))
    hi = int(np.searchsorted(cols.patient, patient, side="right"))
    rows = lo + np.flatnonzero(result.evidence_mask[lo:hi])
    rows = rows[rows >= from_row]
    return rows[-MAX_EVIDENCE_READINGS:]


def evidence_for(
    result: RuleResult, cols: ReadingColumns, patient: int, from_row: int = -1
) -> dict[str, object]:
    """The evidence of `result` for one patient, JSON-ready.

    Keys: rule_id, rule_version, subject, status, thresholds, statistics, reading_ids,
    measured_at_s (of those readings), source.
    """
    rows = evidence_rows(result, cols, patient, from_row)
    status = Status(int(result.status[patient])).name.lower()
    return {
        "rule_id": result.rule.rule_id,
        "rule_version": result.rule.version,
        "subject": result.subject,
        "status": "insufficient data" if status == "insufficient" else status,
        "thresholds": {k: float(v[patient]) for k, v in result.params.items()},
        "statistics": {k: _finite(float(v[patient])) for k, v in result.stats.items()},
        "reading_ids": [str(r) for r in cols.reading_ref[rows]],
        "measured_at_s": [int(t) for t in cols.measured_at_s[rows]],
        "source": result.rule.source,
    }
