"""Evaluate every rule for every patient of a columnar window at `now` (pure: no I/O, no clock).

`evaluate_all` flags implausible readings (`alerts.rules.plausibility`, limits from the
`quality.implausible` parameters) and runs the kernels of `alerts.rules` (one whole-array pass
per rule and subject, no loop over patients) with the patients' time zones and care-plan
conditions (`PatientProfile`); `evidence_for` turns one patient's result into the evidence a
clinician reads: the rule version, the thresholds used, the statistics and the reading ids
(with their devices, and for a late finding the measured and received times) behind them.

Per-reading rules have two subjects: "" (live) and "late" (`alerts.rules.late`). To add a rule,
add it to the catalog and its kernel (or kernels, one per subject) to `KERNELS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import partial

import numpy as np

from alerts.rules import adherence, bp, cgm, glucose, plausibility, trends, vitals
from alerts.rules.catalog import (
    RULES,
    RULES_BY_ID,
    Overrides,
    Rule,
    condition_targets,
    resolve_params,
)
from alerts.rules.columns import KindCode, ReadingColumns
from alerts.rules.context import Context
from alerts.rules.late import SUBJECT as LATE
from alerts.rules.localtime import LocalClock
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import Status
from alerts.rules.window_pass import segment_starts

Kernel = Callable[..., RuleResult]
# (rule_id, subject): the key of one rule's state per patient ("" unless a rule has subjects).
RuleKey = tuple[str, str]
MAX_EVIDENCE_READINGS = 200


def _live_and_late(kernel: Kernel) -> tuple[tuple[str, Kernel], ...]:
    return (("", kernel), (LATE, partial(kernel, late=True)))


KERNELS: Mapping[str, tuple[tuple[str, Kernel], ...]] = {
    "glucose.hypo_l2": _live_and_late(glucose.per_reading),
    "glucose.hypo_l1": _live_and_late(glucose.per_reading),
    "glucose.hyper": _live_and_late(glucose.per_reading),
    "glucose.tir_14d": (("", glucose.windows),),
    "glucose.tbr_14d": (("", glucose.windows),),
    "glucose.cv_14d": (("", glucose.windows),),
    "glucose.fasting_mean_7d": (("", glucose.windows),),
    "bp.crisis": _live_and_late(bp.crisis),
    "bp.hypotension": _live_and_late(bp.hypotension),
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
    "spo2.low_sustained": _live_and_late(vitals.spo2_low),
    "heart_rate.tachycardia_rest": _live_and_late(vitals.heart_rate_at_rest),
    "heart_rate.bradycardia_rest": _live_and_late(vitals.heart_rate_at_rest),
    "temperature.fever": _live_and_late(vitals.fever),
    "weight.gain_hf_3d": _live_and_late(vitals.weight_gain),
    "cgm.tir_14d": (("", cgm.time_in_ranges),),
    "cgm.tbr_14d": (("", cgm.time_in_ranges),),
    "cgm.cv_14d": (("", cgm.time_in_ranges),),
    plausibility.RULE_ID: tuple(
        (subject, partial(plausibility.implausible_finding, kind=kind))
        for kind, subject in plausibility.SUBJECTS.items()
    ),
}
PER_READING_RULES = frozenset(
    {
        "glucose.hypo_l2", "glucose.hypo_l1", "glucose.hyper", "bp.crisis", "bp.hypotension",
        "spo2.low_sustained", "heart_rate.tachycardia_rest", "heart_rate.bradycardia_rest",
        "temperature.fever", "weight.gain_hf_3d",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """What the rules need to know about a patient besides the readings: the IANA time zone
    (loaded at the edge) and the target-relevant care-plan conditions
    (`alerts.rules.conditions`)."""

    timezone: tzinfo | None = None
    conditions: frozenset[str] = field(default_factory=frozenset)


Profiles = Mapping[str, PatientProfile]
NO_PROFILE = PatientProfile()


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
    profiles: Profiles | None = None,
    new_rows: BoolArray | None = None,
    hub_offline: Collection[str] = (),
) -> list[RuleResult]:
    """Evaluate `rules` for all patients of `cols` at `now_s` (seconds since the epoch, UTC).

    `new_rows` marks the rows no earlier evaluation saw (None: all of them); the results'
    rows are those of `cols` (the returned evidence masks index them). `hub_offline` names
    the patients with a hub known to be offline (`Context.hub_offline`).

    Raises:
        RuleParameterError: a care-plan override is unusable.
        KeyError: a rule has no kernel.
    """
    cols, conditions, context = prepare(
        cols, overrides=overrides, profiles=profiles, new_rows=new_rows, hub_offline=hub_offline
    )
    results = []
    none = np.zeros(cols.n_patients, dtype=np.bool_)
    for rule in rules:
        params = resolve_params(rule, cols.patient_ids, overrides or {}, conditions)
        for subject, kernel in KERNELS[rule.rule_id]:
            key = (rule.rule_id, subject)
            was = prior.was_active.get(key, none)
            after = prior.anchor_row.get(key)
            results.append(kernel(rule, cols, now_s, params, was, after_row=after, context=context))
    return results


def prepare(
    cols: ReadingColumns,
    *,
    overrides: Overrides | None,
    profiles: Profiles | None,
    new_rows: BoolArray | None,
    hub_offline: Collection[str],
) -> tuple[ReadingColumns, dict[str, frozenset[str]], Context]:
    """What every kernel of one evaluation shares: `cols` with the implausible readings
    flagged, the patients' care-plan conditions and the kernels' `Context` (see
    `evaluate_all`).

    Raises:
        RuleParameterError: a care-plan override of the plausibility limits is unusable.
    """
    quality = RULES_BY_ID[plausibility.RULE_ID]
    limits = resolve_params(quality, cols.patient_ids, overrides or {})
    starts = segment_starts(cols)
    cols = plausibility.flag_implausible(cols, limits, starts)
    conditions: dict[str, frozenset[str]] = {}
    zones: list[tzinfo | None] = []
    if profiles:  # the loops run over the patients only when some have a profile
        own = [profiles.get(pid, NO_PROFILE) for pid in cols.patient_ids]
        conditions = {pid: p.conditions for pid, p in profiles.items() if p.conditions}
        zones = [p.timezone for p in own]
    offline = None
    if hub_offline:
        offline_ids = set(hub_offline)
        offline = np.fromiter(
            (pid in offline_ids for pid in cols.patient_ids), np.bool_, cols.n_patients
        )
    context = Context(LocalClock(zones), new_rows, offline, starts=starts, scratch={})
    return cols, conditions, context


# History a rule needs besides its window parameters (home protocols: 7 local days at any
# offset).
_PROTOCOL_HISTORY_S = 8 * 86_400 + 14 * 3600


def horizon_s(rules: Iterable[Rule], overrides: Overrides | None = None) -> int:
    """How far back (seconds before now) the given rules look, with the care plan's overrides.

    Evaluating on `cols.take(cols.measured_at_s >= now - horizon_s(...))` gives the same
    results as on all rows, over fewer rows.
    """
    longest = 0.0
    for rule in rules:
        values = {k: v for k, v in rule.params.items() if math.isfinite(v)}
        for per_rule in (overrides or {}).values():
            for name, value in per_rule.get(rule.rule_id, {}).items():
                values[name] = max(abs(values.get(name, 0.0)), abs(float(value)))
        max_age_s = values.get("max_age_h", 0.0) * 3600
        baseline_s = values.get("window_h", 0.0) * 3600  # before each reading it judges
        longest = max(
            longest,
            values.get("window_d", 0.0) * 86_400,
            values.get("lookback_d", 0.0) * 86_400,
            max_age_s + values.get("confirm_within_min", 0.0) * 60 + baseline_s,
            max_age_s + values.get("late_max_age_d", 0.0) * 86_400 + baseline_s,
            _PROTOCOL_HISTORY_S + abs(values.get("utc_offset_min", 0.0)) * 60
            if "utc_offset_min" in rule.params
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
    result: RuleResult,
    cols: ReadingColumns,
    patient: int,
    from_row: int = -1,
    conditions: frozenset[str] = frozenset(),
) -> dict[str, object]:
    """The evidence of `result` for one patient, JSON-ready.

    Keys: rule_id, rule_version, subject, status, thresholds, statistics, reading_ids,
    measured_at_s (of those readings), device_ids (their devices, once each), source; a late
    finding adds `late: true` and received_at_s; targets set by care-plan conditions add
    `target_conditions` and `conditions_source`.
    """
    rows = evidence_rows(result, cols, patient, from_row)
    status = Status(int(result.status[patient])).name.lower()
    rule = result.rule
    out: dict[str, object] = {
        "rule_id": rule.rule_id,
        "rule_version": rule.version,
        "subject": result.subject,
        "status": "insufficient data" if status == "insufficient" else status,
        "thresholds": {k: _finite(float(v[patient])) for k, v in result.params.items()},
        "statistics": {k: _finite(float(v[patient])) for k, v in result.stats.items()},
        "reading_ids": [str(r) for r in cols.reading_ref[rows]],
        "measured_at_s": [int(t) for t in cols.measured_at_s[rows]],
        "device_ids": sorted({str(d) for d in cols.device_ref[rows] if d}),
        "source": rule.source,
    }
    if result.subject == LATE:
        out["late"] = True
        out["received_at_s"] = [int(t) for t in cols.received_at_s[rows]]
    targets = condition_targets(rule, conditions)
    if targets:
        out["target_conditions"] = targets
        out["conditions_source"] = rule.conditions_source
    return out
