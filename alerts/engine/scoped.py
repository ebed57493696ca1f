"""Evaluate each rule over only the rows it can read: a continuous step's cost is what is new.

`evaluate_scoped` returns what `evaluate.evaluate_all` returns for the same columns (the same
results, indexed by the same rows), but runs each kernel over a narrower selection of rows:

- the kinds of reading its rule reads (`KINDS`: a glucose rule never looks at a cuff reading,
  a CGM rule only at CGM readings; a rule missing from the table sees every kind);
- the rows measured within its own horizon (`rule_horizon_s`): a live per-reading rule sees
  the last `max_age_h` (plus the re-measure window of `bp.crisis` and the baseline window of
  `weight.gain_hf_3d`), a 14-day window rule 14 days, the home protocols 8 days and 14 hours;
- a late finding (subject `late`) only the rows of patients with a reading that arrived late
  and recently (`late_patients`); for every other patient it has no rows, which gives the same
  result (no late reading: clear).

Every kernel works patient by patient over rows sorted by (patient, time), reads no row
outside these selections and no row of another patient, so its result over the selection
equals its result over all rows. Row numbers are mapped both ways: the prior episodes' anchor
rows into the selection (a row the selection left out maps to the selected row before it,
which keeps `row > anchor` true for the same rows), and the results' anchor rows, evidence
masks and closed runs back to the rows of the columns given. Tests compare the two
evaluations on random columns of every kind (tests/alerts/engine/test_scoped.py).

The selections leave out the reading and device ids (object columns no kernel reads; the
results point at rows of the columns given, which keep them). Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import numpy as np

from alerts.engine.evaluate import (
    KERNELS,
    PER_READING_RULES,
    PriorState,
    Profiles,
    horizon_s,
    prepare,
)
from alerts.rules import adherence, plausibility
from alerts.rules.catalog import RULES, Overrides, Rule, resolve_params
from alerts.rules.columns import ARRAY_FIELDS, KindCode, ReadingColumns
from alerts.rules.late import SUBJECT as LATE
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import Runs
from alerts.rules.window_pass import segment_starts

K = KindCode
ADHERENCE_RULE: Final = "adherence.no_readings"
_OBJECT_FIELDS: Final = frozenset({"reading_ref", "device_ref"})
_NO_LIMIT: Final = int(np.iinfo(np.int64).min)
_GLUCOSE: Final = frozenset({K.GLUCOSE})
_CUFF: Final = frozenset({K.BLOOD_PRESSURE})
_CGM: Final = frozenset({K.CGM_GLUCOSE})
# The kinds of reading each rule's kernels read (the row filters of `alerts.rules`).
KINDS: Final[Mapping[str, frozenset[KindCode]]] = {
    "glucose.hypo_l2": _GLUCOSE,
    "glucose.hypo_l1": _GLUCOSE,
    "glucose.hyper": _GLUCOSE,
    "glucose.tir_14d": _GLUCOSE,
    "glucose.tbr_14d": _GLUCOSE,
    "glucose.cv_14d": _GLUCOSE,
    "glucose.fasting_mean_7d": _GLUCOSE,
    "glucose.fasting_trend_14d": _GLUCOSE,
    "bp.crisis": _CUFF,
    "bp.hypotension": _CUFF,
    "bp.home_esh_7d": _CUFF,
    "bp.home_aha_ama_2020": _CUFF,
    "bp.home_china_2019": _CUFF,
    "bp.trend_14d": _CUFF,
    "spo2.low_sustained": frozenset({K.SPO2}),
    "heart_rate.tachycardia_rest": frozenset({K.HEART_RATE, K.SPO2}),  # oximeters' pulse too
    "heart_rate.bradycardia_rest": frozenset({K.HEART_RATE, K.SPO2}),
    "temperature.fever": frozenset({K.BODY_TEMPERATURE}),
    "weight.gain_hf_3d": frozenset({K.BODY_WEIGHT}),
    "cgm.tir_14d": _CGM,
    "cgm.tbr_14d": _CGM,
    "cgm.cv_14d": _CGM,
}
# Subjects that read one kind: the kind per subject.
_SUBJECT_KIND: Final[Mapping[str, Mapping[str, KindCode]]] = {
    plausibility.RULE_ID: {subject: kind for kind, subject in plausibility.SUBJECTS.items()},
    ADHERENCE_RULE: {subject: kind for kind, subject in adherence.SUBJECTS.items()},
}


def _param_values(rule: Rule, overrides: Overrides | None) -> dict[str, float]:
    """The rule's finite parameters, each the largest magnitude any care plan sets."""
    values = {k: v for k, v in rule.params.items() if np.isfinite(v)}
    for per_rule in (overrides or {}).values():
        for name, value in per_rule.get(rule.rule_id, {}).items():
            values[name] = max(abs(values.get(name, 0.0)), abs(float(value)))
    return values


def rule_horizon_s(rule: Rule, subject: str, overrides: Overrides | None = None) -> int | None:
    """How far back (seconds before now, by measured time) one kernel of `rule` reads, or
    None for no limit (a late finding, whose rows are chosen by `late_patients` instead, and
    `adherence.no_readings`, which reports the age of the newest reading however old).

    A live per-reading rule: its readings of the last `max_age_h`, plus the re-measurement
    window before them (`confirm_within_min`) and the baseline window (`window_h`). Any other
    rule: `evaluate.horizon_s`.
    """
    if subject == LATE or rule.rule_id == ADHERENCE_RULE:
        return None
    if rule.rule_id not in PER_READING_RULES:
        return horizon_s([rule], overrides)
    values = _param_values(rule, overrides)
    return (
        int(
            values.get("max_age_h", 0.0) * 3600
            + values.get("confirm_within_min", 0.0) * 60
            + values.get("window_h", 0.0) * 3600
        )
        + 1
    )


def late_patients(
    cols: ReadingColumns, now_s: int, rules: Iterable[Rule], overrides: Overrides | None = None
) -> BoolArray:
    """Per patient: whether a reading of theirs could make a late finding now (it arrived more
    than the shortest `max_age_h` after it was taken, within the longest `max_age_h` before
    now); a superset of the patients `late.late_rows` finds any row for."""
    ages = [
        float(v)
        for rule in rules
        if rule.rule_id in PER_READING_RULES
        for v in [rule.params["max_age_h"]]
        + [
            per_rule[rule.rule_id]["max_age_h"]
            for per_rule in (overrides or {}).values()
            if "max_age_h" in per_rule.get(rule.rule_id, {})
        ]
    ]
    out = np.zeros(cols.n_patients, dtype=np.bool_)
    if not ages or not len(cols):
        return out
    received = cols.received_at_s
    maybe = (
        (received <= now_s)
        & (received > now_s - max(ages) * 3600)
        & (received - cols.measured_at_s > min(ages) * 3600)
    )
    out[cols.patient[maybe]] = True
    return out


# A selection keeping more than this share of the rows is not worth its copy: the kernel runs
# over all rows instead (a superset of what it reads gives the same result).
COPY_SHARE: Final = 0.2


@dataclasses.dataclass(frozen=True, slots=True)
class _Selection:
    rows: IntArray | None  # rows of the full columns, ascending; None: all of them
    cols: ReadingColumns
    starts: IntArray
    scratch: dict[str, object]


def _select(cols: ReadingColumns, rows: IntArray) -> _Selection:
    n = rows.shape[0]
    none = np.broadcast_to(np.array(None, dtype=np.object_), (n,))
    fields: dict[str, Any] = {
        name: none if name in _OBJECT_FIELDS else getattr(cols, name)[rows] for name in ARRAY_FIELDS
    }
    sub = ReadingColumns(cols.patient_ids, **fields)
    return _Selection(rows, sub, segment_starts(sub), {})


def _into(rows: IntArray, full_rows: IntArray | None) -> IntArray | None:
    """Full-column row numbers (-1: none) as selection row numbers: the last selected row at
    or before each (-1 if none), so `selected > mapped` holds for the same rows."""
    if full_rows is None:
        return None
    mapped: IntArray = np.searchsorted(rows, full_rows, side="right").astype(np.int64) - 1
    return mapped


def _back(rows: IntArray, sub_rows: IntArray) -> IntArray:
    """Selection row numbers (-1: none) as full-column row numbers."""
    if not rows.shape[0]:
        return np.full(sub_rows.shape, -1, dtype=np.int64)
    out: IntArray = np.where(sub_rows >= 0, rows[np.maximum(sub_rows, 0)], -1).astype(np.int64)
    return out


def _lift(result: RuleResult, sel: _Selection, n_rows: int) -> RuleResult:
    """`result` (over the selection's rows) over the rows of the full columns."""
    if sel.rows is None:
        return result
    evidence = np.zeros(n_rows, dtype=np.bool_)
    evidence[sel.rows] = result.evidence_mask
    closed = result.closed
    if closed is not None:
        closed = Runs(
            _back(sel.rows, closed.first_row), _back(sel.rows, closed.end_row), closed.patient,
            _back(sel.rows, closed.carried_end_row),
        )  # fmt: skip
    return dataclasses.replace(
        result, anchor_row=_back(sel.rows, result.anchor_row), evidence_mask=evidence,
        closed=closed,
    )  # fmt: skip


def evaluate_scoped(
    cols: ReadingColumns,
    now_s: int,
    *,
    prior: PriorState,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
    profiles: Profiles | None = None,
    new_rows: BoolArray | None = None,
    hub_offline: Collection[str] = (),
    copy_share: float = COPY_SHARE,
) -> list[RuleResult]:
    """`evaluate.evaluate_all(cols, ...)`, each kernel over the rows it reads (module doc);
    a selection of more than `copy_share` of the rows is not copied (the kernel sees all).

    Raises:
        RuleParameterError: a care-plan override is unusable.
        KeyError: a rule has no kernel.
    """
    rules = list(rules)
    cols, conditions, context = prepare(
        cols, overrides=overrides, profiles=profiles, new_rows=new_rows, hub_offline=hub_offline
    )
    n_rows = len(cols)
    whole = _Selection(
        None, cols, segment_starts(cols) if context.starts is None else context.starts,
        {} if context.scratch is None else context.scratch,
    )  # fmt: skip
    late = late_patients(cols, now_s, rules, overrides)
    present = np.bincount(cols.kind.astype(np.intp), minlength=len(KindCode)) > 0
    selections: dict[tuple[frozenset[KindCode] | None, int, bool], _Selection] = {}
    kind_masks: dict[frozenset[KindCode] | None, BoolArray] = {}
    time_masks: dict[int, BoolArray] = {}

    def selection(kinds: frozenset[KindCode] | None, since_s: int, only_late: bool) -> _Selection:
        key = (kinds, since_s, only_late)
        if key in selections:
            return selections[key]
        if (kinds is not None and not any(present[k] for k in kinds)) or (
            only_late and not late.any()
        ):
            chosen = _select(cols, np.zeros(0, dtype=np.int64))  # none of its rows here
        else:
            if kinds not in kind_masks:
                kind_masks[kinds] = (
                    np.ones(n_rows, dtype=np.bool_)
                    if kinds is None
                    else np.isin(cols.kind, np.array(sorted(kinds), dtype=np.int8))
                )
            mask = kind_masks[kinds]
            if since_s != _NO_LIMIT:
                if since_s not in time_masks:
                    time_masks[since_s] = cols.measured_at_s >= since_s
                mask = mask & time_masks[since_s]
            if only_late:
                mask = mask & late[cols.patient]
            rows = np.flatnonzero(mask)
            chosen = _select(cols, rows) if rows.shape[0] <= copy_share * n_rows else whole
        selections[key] = chosen
        return chosen

    results = []
    none = np.zeros(cols.n_patients, dtype=np.bool_)
    for rule in rules:
        params = resolve_params(rule, cols.patient_ids, overrides or {}, conditions)
        for subject, kernel in KERNELS[rule.rule_id]:
            one_kind = _SUBJECT_KIND.get(rule.rule_id, {}).get(subject)
            kinds = frozenset({one_kind}) if one_kind is not None else KINDS.get(rule.rule_id)
            only_late = subject == LATE and rule.rule_id in PER_READING_RULES
            horizon = rule_horizon_s(rule, subject, overrides)
            since_s = _NO_LIMIT if horizon is None else now_s - horizon
            sel = selection(kinds, since_s, only_late)
            key = (rule.rule_id, subject)
            was = prior.was_active.get(key, none)
            after = prior.anchor_row.get(key)
            ctx = context
            if sel.rows is not None:
                after = _into(sel.rows, after)
                ctx = dataclasses.replace(
                    context,
                    new_rows=None if context.new_rows is None else context.new_rows[sel.rows],
                    starts=sel.starts,
                    scratch=sel.scratch,
                )
            result = kernel(rule, sel.cols, now_s, params, was, after_row=after, context=ctx)
            results.append(_lift(result, sel, n_rows))
    return results
