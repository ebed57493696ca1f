"""Alert episodes: from rule results and the open episodes to the changes to persist (pure).

An episode is keyed by (patient, rule, subject) while open: at most one is open per key. It is
opened once (revision 1), updated when new evidence arrives while the condition persists,
resolved when the condition clears (the kernels' hysteresis decides), and left alone when data
is insufficient. Its `alert_id` is a UUIDv5 over the rule id, rule version, patient, subject
and the reading id of its first triggering evidence, so re-running an evaluation after a crash
derives the same id and the store's UNIQUE constraint (and the existence check) absorbs it.

Alert fatigue: every revision is kept in the record, but a `Change` is pushed (`notify`) only
when it opens or resolves an episode, when the episode's priority rises above the one last
pushed (at once), or when its severity grew by the rule's `worsens_by` past the severity last
pushed, at most once per `update_interval_s` (a worsening held back by the interval is pushed
by the first evaluation after it, new evidence or not). An open episode's priority never falls.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import numpy as np

from alerts.engine.evaluate import (
    NO_PROFILE,
    PER_READING_RULES,
    PriorState,
    Profiles,
    RuleKey,
    evidence_for,
    evidence_rows,
)
from alerts.events import EventType, Priority
from alerts.rules.catalog import LEVEL_PRIORITY, PRIORITY_LEVEL
from alerts.rules.columns import ReadingColumns
from alerts.rules.result import BoolArray, IntArray, RuleResult
from alerts.rules.segments import Status

ALERT_NAMESPACE: Final = uuid.UUID("9d3c1b7e-52a4-5f0e-8b6d-1e2f3a4b5c6d")
NO_READING: Final = "-"
DEFAULT_UPDATE_INTERVAL_S: Final = 4 * 3600

EpisodeKey = tuple[str, str, str]  # patient_id, rule_id, subject


def alert_id_for(rule_id: str, version: int, patient_id: str, subject: str, anchor_ref: str) -> str:
    """Deterministic alert id: rule, rule version, patient, subject, first triggering reading."""
    name = f"{rule_id}|v{version}|{patient_id}|{subject}|{anchor_ref}"
    return str(uuid.uuid5(ALERT_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class OpenEpisode:
    """An episode open in the store."""

    alert_id: str
    patient_id: str
    rule_id: str
    subject: str
    revision: int
    anchor_ref: str
    last_ref: str  # newest reading id cited at the last revision
    priority: Priority = Priority.LOW
    severity: float | None = None
    notified_at_s: int | None = None  # when the last pushed event of this episode happened
    notified_priority: Priority | None = None  # its priority (None: take `priority`)
    notified_severity: float | None = None  # the severity then (None: unknown)


@dataclass(frozen=True, slots=True)
class Change:
    """One revision of one alert to persist; its event is pushed when `notify` (see the
    module doc), and the `notified_*` fields are the episode's push state after it."""

    type: EventType
    alert_id: str
    patient_id: str
    rule_id: str
    rule_version: int
    subject: str
    priority: Priority
    revision: int
    anchor_ref: str
    last_ref: str
    evidence: Mapping[str, object]
    notify: bool = True
    severity: float | None = None
    notified_at_s: int | None = None
    notified_priority: Priority | None = None
    notified_severity: float | None = None


def prior_state(cols: ReadingColumns, open_episodes: Sequence[OpenEpisode]) -> PriorState:
    """Per-rule arrays of which patients have an open episode, and (per-reading rules, which
    replay only readings after it) the row of its anchor reading, -1 if not among the rows."""
    index = {pid: i for i, pid in enumerate(cols.patient_ids)}
    was: dict[RuleKey, BoolArray] = {}
    anchor: dict[RuleKey, IntArray] = {}
    # Look anchors up only among the rows of patients with an open per-reading episode.
    codes = np.array(
        sorted({index[e.patient_id] for e in open_episodes
                if e.rule_id in PER_READING_RULES and e.patient_id in index}), dtype=np.int64,
    )  # fmt: skip
    rows = np.flatnonzero(np.isin(cols.patient, codes)) if codes.size else codes
    row_of = {
        (int(p), str(ref)): int(r)
        for r, p, ref in zip(rows, cols.patient[rows], cols.reading_ref[rows], strict=True)
    }
    for e in open_episodes:
        p = index.get(e.patient_id)
        if p is None:
            continue
        key = (e.rule_id, e.subject)
        if key not in was:
            was[key] = np.zeros(cols.n_patients, dtype=np.bool_)
            anchor[key] = np.full(cols.n_patients, -1, dtype=np.int64)
        was[key][p] = True
        anchor[key][p] = row_of.get((p, e.anchor_ref), -1)
    return PriorState(was, anchor)


def _ref(cols: ReadingColumns, row: int) -> str:
    return str(cols.reading_ref[row]) if row >= 0 else NO_READING


def _last_ref(evidence: Mapping[str, object]) -> str:
    ids = evidence["reading_ids"]
    assert isinstance(ids, list)
    return str(ids[-1]) if ids else NO_READING


def _priority(result: RuleResult, p: int) -> Priority:
    level = result.priority_level
    return result.rule.priority if level is None else LEVEL_PRIORITY[int(level[p])]


def _severity(result: RuleResult, p: int) -> float | None:
    if result.severity is None:
        return None
    value = float(result.severity[p])
    return value if np.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What `plan_changes` needs besides the results (one evaluation)."""

    cols: ReadingColumns
    now_s: int
    update_interval_s: int
    profiles: Profiles

    def conditions(self, patient: int) -> frozenset[str]:
        return self.profiles.get(self.cols.patient_ids[patient], NO_PROFILE).conditions


def _opened(
    result: RuleResult,
    plan: _Plan,
    p: int,
    *,
    alert_id: str,
    anchor: str,
    evidence: Mapping[str, object],
    priority: Priority | None = None,
) -> Change:
    rule = result.rule
    prio = priority or _priority(result, p)
    sev = _severity(result, p)
    return Change(
        EventType.ALERT_OPENED, alert_id, plan.cols.patient_ids[p], rule.rule_id, rule.version,
        result.subject, prio, 1, anchor, _last_ref(evidence), evidence, True, sev, plan.now_s,
        prio, sev,
    )  # fmt: skip


def plan_changes(
    results: Sequence[RuleResult],
    cols: ReadingColumns,
    open_episodes: Sequence[OpenEpisode],
    *,
    new_rows: BoolArray,
    known_alert_ids: frozenset[str] = frozenset(),
    now_s: int = 0,
    update_interval_s: int = DEFAULT_UPDATE_INTERVAL_S,
    profiles: Profiles | None = None,
) -> list[Change]:
    """The changes that bring the store in line with `results` at `now_s`.

    `new_rows` marks rows not seen by any earlier evaluation: an episode that opened and
    cleared within the rows is recorded only if its clearing reading is new (an older one was
    recorded when it happened). `known_alert_ids` are ids already in the store (any status):
    they are never opened again.
    """
    plan = _Plan(cols, now_s, update_interval_s, profiles or {})
    index = {pid: i for i, pid in enumerate(cols.patient_ids)}
    by_rule: dict[RuleKey, list[OpenEpisode]] = {}
    for e in open_episodes:
        by_rule.setdefault((e.rule_id, e.subject), []).append(e)
    changes: list[Change] = []
    for result in results:
        key = (result.rule.rule_id, result.subject)
        episodes = [e for e in by_rule.get(key, []) if e.patient_id in index]
        updates = _open_changes(result, plan, episodes, index)
        changes += updates
        if result.rule.rule_id in PER_READING_RULES:
            changes += _closed_runs(result, plan, new_rows, known_alert_ids)
        resolved = {c.alert_id for c in updates if c.type == EventType.ALERT_RESOLVED}
        held = {e.patient_id for e in episodes if e.alert_id not in resolved}
        changes += _new_episodes(result, plan, held, known_alert_ids)
    return changes


def _open_changes(
    result: RuleResult,
    plan: _Plan,
    episodes: Sequence[OpenEpisode],
    index: Mapping[str, int],
) -> list[Change]:
    """Update or resolve the episodes already open (insufficient data leaves them alone)."""
    out = []
    cols = plan.cols
    rule = result.rule
    for episode in episodes:
        p = index[episode.patient_id]
        status = int(result.status[p])
        if status == Status.INSUFFICIENT:
            continue
        carried = int(result.closed.carried_end_row[p]) if result.closed is not None else -1
        evidence = evidence_for(result, cols, p, conditions=plan.conditions(p))
        revision = episode.revision + 1
        if status == Status.ACTIVE and carried < 0 and result.anchor_row[p] < 0:
            change = _update(result, plan, episode, p, evidence)
            if change is not None:
                out.append(change)
            continue
        cleared = {**evidence, "status": "clear"}
        if carried >= 0:
            cleared["cleared_by"] = _ref(cols, carried)
        out.append(Change(
            EventType.ALERT_RESOLVED, episode.alert_id, episode.patient_id, rule.rule_id,
            rule.version, result.subject, episode.priority, revision, episode.anchor_ref,
            _last_ref(cleared), cleared, True, episode.severity, plan.now_s, episode.priority,
            episode.severity,
        ))  # fmt: skip
    return out


def _update(
    result: RuleResult,
    plan: _Plan,
    episode: OpenEpisode,
    p: int,
    evidence: Mapping[str, object],
) -> Change | None:
    """The update of an open, still active episode, or None when nothing changed."""
    rule = result.rule
    now_priority = _priority(result, p)
    priority = max(episode.priority, now_priority, key=PRIORITY_LEVEL.__getitem__)
    severity = _severity(result, p)
    if severity is None:
        severity = episode.severity  # no figure now (a carried episode): keep the last one
    elif rule.rule_id in PER_READING_RULES and episode.severity is not None:
        severity = max(severity, episode.severity)  # the worst reading of the episode so far
    notified_priority = episode.notified_priority or episode.priority
    baseline = episode.notified_severity
    rises = PRIORITY_LEVEL[priority] > PRIORITY_LEVEL[notified_priority]
    worse = (
        rule.worsens_by > 0
        and severity is not None
        and baseline is not None
        and severity >= baseline + rule.worsens_by
    )
    due = (
        episode.notified_at_s is None
        or plan.now_s - episode.notified_at_s >= plan.update_interval_s
    )
    notify = rises or (worse and due)
    new_evidence = _last_ref(evidence) not in (episode.last_ref, NO_READING)
    if not new_evidence and not notify:
        return None
    if notify:
        at_s: int | None = plan.now_s
        pushed_priority: Priority | None = priority
        pushed_severity = severity
    else:
        at_s, pushed_priority = episode.notified_at_s, notified_priority
        pushed_severity = severity if baseline is None else baseline  # first known severity
    return Change(
        EventType.ALERT_UPDATED, episode.alert_id, episode.patient_id, rule.rule_id,
        rule.version, result.subject, priority, episode.revision + 1, episode.anchor_ref,
        _last_ref(evidence), evidence, notify, severity, at_s, pushed_priority, pushed_severity,
    )  # fmt: skip


def _closed_runs(
    result: RuleResult,
    plan: _Plan,
    new_rows: BoolArray,
    known_alert_ids: frozenset[str],
) -> list[Change]:
    """Episodes that opened and cleared within the rows, recorded when the clearing is new."""
    out: list[Change] = []
    closed = result.closed
    if closed is None:
        return out
    cols = plan.cols
    rule = result.rule
    for first, end, p in zip(closed.first_row, closed.end_row, closed.patient, strict=True):
        if not new_rows[end]:
            continue
        pid = cols.patient_ids[int(p)]
        anchor = _ref(cols, int(first))
        alert_id = alert_id_for(rule.rule_id, rule.version, pid, result.subject, anchor)
        if alert_id in known_alert_ids:
            continue
        ev = evidence_for(result, cols, int(p), int(first), plan.conditions(int(p)))
        ids = ev["reading_ids"]
        assert isinstance(ids, list)
        opened = {**ev, "reading_ids": ids[: _upto(cols, ev, int(end))], "status": "active"}
        resolved = {**opened, "status": "clear", "cleared_by": _ref(cols, int(end))}
        priority = rule.priority
        if rule.symptoms_priority is not None:
            rows = evidence_rows(result, cols, int(p), int(first))
            rows = rows[cols.measured_at_s[rows] <= cols.measured_at_s[int(end)]]
            if cols.symptoms[rows].any():
                priority = rule.symptoms_priority
        change = _opened(
            result, plan, int(p), alert_id=alert_id, anchor=anchor, evidence=opened,
            priority=priority,
        )  # fmt: skip
        out.append(change)
        out.append(replace(change, type=EventType.ALERT_RESOLVED, revision=2, evidence=resolved))
    return out


def _new_episodes(
    result: RuleResult,
    plan: _Plan,
    held: set[str],
    known_alert_ids: frozenset[str],
) -> list[Change]:
    """Episodes active now that the store does not hold yet."""
    out = []
    cols = plan.cols
    rule = result.rule
    for p in np.flatnonzero((result.status == Status.ACTIVE) & (result.anchor_row >= 0)):
        pid = cols.patient_ids[int(p)]
        if pid in held:
            continue
        row = int(result.anchor_row[p])
        anchor = _ref(cols, row)
        alert_id = alert_id_for(rule.rule_id, rule.version, pid, result.subject, anchor)
        if alert_id in known_alert_ids:
            continue
        from_row = row if rule.rule_id in PER_READING_RULES else -1
        evidence = evidence_for(result, cols, int(p), from_row, plan.conditions(int(p)))
        out.append(_opened(result, plan, int(p), alert_id=alert_id, anchor=anchor,
                           evidence=evidence))  # fmt: skip
    return out


def _upto(cols: ReadingColumns, evidence: Mapping[str, object], end_row: int) -> int:
    """How many of the evidence readings were measured before the clearing reading."""
    times = evidence["measured_at_s"]
    assert isinstance(times, list)
    end_t = int(cols.measured_at_s[end_row])
    return sum(1 for t in times if t <= end_t)


def candidate_alert_ids(results: Sequence[RuleResult], cols: ReadingColumns) -> list[str]:
    """Alert ids `plan_changes` might open (to look up which the store already holds)."""
    out = []
    for result in results:
        rule = result.rule
        rows: list[tuple[int, int]] = [
            (int(result.anchor_row[p]), int(p))
            for p in np.flatnonzero((result.status == Status.ACTIVE) & (result.anchor_row >= 0))
        ]
        if result.closed is not None:
            rows += [
                (int(f), int(p))
                for f, p in zip(result.closed.first_row, result.closed.patient, strict=True)
            ]
        for row, p in rows:
            out.append(
                alert_id_for(
                    rule.rule_id, rule.version, cols.patient_ids[p], result.subject, _ref(cols, row)
                )
            )
    return out


def utc(now_s: int) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(now_s, tz=UTC)
