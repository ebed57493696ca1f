"""Replay: what the rules would have raised over a stretch of history (pure: no I/O, no clock).

For a new rule or a changed care plan: the engine steps through time from `start_s` to
`end_s` every `step_s` seconds (and at `end_s`), or at the given `ticks`, each step seeing only
readings measured and received by then (`offline.visible_at`), with episodes kept in memory
exactly as the runner keeps them in the store. Readings count as "new" at the first step that
sees them. `replay_changes` yields every change (pushed or record-only) in order, for counting
what a care team would have received.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from alerts.engine.episodes import (
    DEFAULT_UPDATE_INTERVAL_S,
    Change,
    OpenEpisode,
    candidate_alert_ids,
    plan_changes,
    prior_state,
)
from alerts.engine.evaluate import Profiles, evaluate_all
from alerts.engine.offline import visible_at
from alerts.events import EventType, Priority
from alerts.rules.catalog import RULES, Overrides, Rule
from alerts.rules.columns import ReadingColumns

DAY_S = 86_400


@dataclass
class _Episode:
    alert_id: str
    patient_id: str
    rule_id: str
    subject: str
    priority: str
    opened_at_s: int
    resolved_at_s: int | None
    revision: int
    anchor_ref: str
    last_ref: str
    evidence: dict[str, object]
    severity: float | None
    notified_at_s: int | None
    notified_priority: Priority | None
    notified_severity: float | None


def _ticks(start_s: int, end_s: int, step_s: int, ticks: Sequence[int] | None) -> list[int]:
    if ticks is not None:
        return sorted(set(ticks))
    if step_s <= 0 or end_s < start_s:
        raise ValueError("need step_s > 0 and end_s >= start_s")
    return [*range(start_s, end_s, step_s), end_s]


def replay_changes(
    cols: ReadingColumns,
    start_s: int,
    end_s: int,
    *,
    step_s: int = 3600,
    ticks: Sequence[int] | None = None,
    lookback_d: float = 35.0,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
    profiles: Profiles | None = None,
    update_interval_s: int = DEFAULT_UPDATE_INTERVAL_S,
) -> Iterator[tuple[int, Change]]:
    """Every change the runner would have made, as (tick, change), in order.

    Raises:
        ValueError: `step_s` is not positive or `end_s` < `start_s` (without `ticks`).
        RuleParameterError: a care-plan override is unusable.
    """
    rules = list(rules)
    episodes: dict[str, _Episode] = {}
    order = _ticks(start_s, end_s, step_s, ticks)
    seen = np.zeros(len(cols), dtype=np.bool_)
    for tick in order:
        visible = visible_at(cols, tick)
        in_window = visible & (cols.measured_at_s >= tick - int(lookback_d * DAY_S))
        window = cols.take(in_window)
        new_rows = ~seen[in_window]
        seen |= visible
        open_now = [
            OpenEpisode(e.alert_id, e.patient_id, e.rule_id, e.subject, e.revision,
                        e.anchor_ref, e.last_ref, Priority(e.priority), e.severity,
                        e.notified_at_s, e.notified_priority, e.notified_severity)
            for e in episodes.values() if e.resolved_at_s is None
        ]  # fmt: skip
        results = evaluate_all(
            window, tick, prior=prior_state(window, open_now), overrides=overrides,
            rules=rules, profiles=profiles, new_rows=new_rows,
        )  # fmt: skip
        known = frozenset(a for a in candidate_alert_ids(results, window) if a in episodes)
        for ch in plan_changes(
            results, window, open_now, new_rows=new_rows, known_alert_ids=known, now_s=tick,
            update_interval_s=update_interval_s, profiles=profiles,
        ):  # fmt: skip
            _apply(episodes, ch, tick)
            yield tick, ch


def _apply(episodes: dict[str, _Episode], ch: Change, tick: int) -> None:
    if ch.type == EventType.ALERT_OPENED:
        episodes[ch.alert_id] = _Episode(
            ch.alert_id, ch.patient_id, ch.rule_id, ch.subject, ch.priority.value, tick, None, 1,
            ch.anchor_ref, ch.last_ref, dict(ch.evidence), ch.severity, ch.notified_at_s,
            ch.notified_priority, ch.notified_severity,
        )  # fmt: skip
        return
    e = episodes[ch.alert_id]
    e.revision, e.last_ref, e.priority = ch.revision, ch.last_ref, ch.priority.value
    e.severity, e.notified_at_s = ch.severity, ch.notified_at_s
    e.notified_priority, e.notified_severity = ch.notified_priority, ch.notified_severity
    if ch.type == EventType.ALERT_RESOLVED:
        e.resolved_at_s = tick


def replay(
    cols: ReadingColumns,
    start_s: int,
    end_s: int,
    *,
    step_s: int = 3600,
    ticks: Sequence[int] | None = None,
    lookback_d: float = 35.0,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
    profiles: Profiles | None = None,
) -> list[dict[str, object]]:
    """Every episode that would have opened in [start_s, end_s], JSON-ready, by open time.

    Raises:
        ValueError: `step_s` is not positive or `end_s` < `start_s`.
        RuleParameterError: a care-plan override is unusable.
    """
    episodes: dict[str, dict[str, object]] = {}
    for tick, ch in replay_changes(
        cols, start_s, end_s, step_s=step_s, ticks=ticks, lookback_d=lookback_d,
        overrides=overrides, rules=rules, profiles=profiles,
    ):  # fmt: skip
        if ch.type == EventType.ALERT_OPENED:
            episodes[ch.alert_id] = {
                "alert_id": ch.alert_id, "patient_id": ch.patient_id, "rule_id": ch.rule_id,
                "subject": ch.subject, "priority": ch.priority.value, "opened_at_s": tick,
                "resolved_at_s": None, "revisions": 1, "pushed_updates": 0,
                "late": ch.subject == "late", "evidence": dict(ch.evidence),
            }  # fmt: skip
            continue
        e = episodes[ch.alert_id]
        e["revisions"] = ch.revision
        e["priority"] = ch.priority.value
        if ch.type == EventType.ALERT_UPDATED and ch.notify:
            e["pushed_updates"] = int(e["pushed_updates"]) + 1  # type: ignore[call-overload]
        if ch.type == EventType.ALERT_RESOLVED:
            e["resolved_at_s"] = tick
    return sorted(
        episodes.values(),
        key=lambda e: (int(e["opened_at_s"]), str(e["patient_id"]), str(e["rule_id"])),  # type: ignore[call-overload]
    )
