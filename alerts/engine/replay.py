"""Replay: what the rules would have raised over a stretch of history (pure: no I/O, no clock).

For a new rule or a changed care plan: the engine steps through time from `start_s` to
`end_s` every `step_s` seconds (and at `end_s`), each step seeing only readings measured up to
it, with episodes kept in memory exactly as the runner keeps them in the store. Readings count
as "new" at the first step after they were measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.engine.episodes import OpenEpisode, candidate_alert_ids, plan_changes, prior_state
from alerts.engine.evaluate import evaluate_all
from alerts.events import EventType
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


def replay(
    cols: ReadingColumns,
    start_s: int,
    end_s: int,
    *,
    step_s: int = 3600,
    lookback_d: float = 35.0,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
) -> list[dict[str, object]]:
    """Every episode that would have opened in [start_s, end_s], JSON-ready, by open time.

    Raises:
        ValueError: `step_s` is not positive or `end_s` < `start_s`.
        RuleParameterError: a care-plan override is unusable.
    """
    if step_s <= 0 or end_s < start_s:
        raise ValueError("need step_s > 0 and end_s >= start_s")
    rules = list(rules)
    episodes: dict[str, _Episode] = {}
    ticks = [*range(start_s, end_s, step_s), end_s]
    prev = start_s - step_s
    for tick in ticks:
        t = cols.measured_at_s
        window = cols.take((t <= tick) & (t >= tick - int(lookback_d * DAY_S)))
        open_now = [
            OpenEpisode(e.alert_id, e.patient_id, e.rule_id, e.subject, e.revision,
                        e.anchor_ref, e.last_ref)
            for e in episodes.values() if e.resolved_at_s is None
        ]  # fmt: skip
        results = evaluate_all(
            window, tick, prior=prior_state(window, open_now), overrides=overrides, rules=rules
        )
        known = frozenset(a for a in candidate_alert_ids(results, window) if a in episodes)
        new_rows = window.measured_at_s > prev
        for ch in plan_changes(results, window, open_now, new_rows=new_rows, known_alert_ids=known):
            if ch.type == EventType.ALERT_OPENED:
                episodes[ch.alert_id] = _Episode(
                    ch.alert_id, ch.patient_id, ch.rule_id, ch.subject, ch.priority.value, tick,
                    None, 1, ch.anchor_ref, ch.last_ref, dict(ch.evidence),
                )  # fmt: skip
                continue
            e = episodes[ch.alert_id]
            e.revision, e.last_ref = ch.revision, ch.last_ref
            if ch.type == EventType.ALERT_RESOLVED:
                e.resolved_at_s = tick
        prev = tick
    out: list[dict[str, object]] = [
        {
            "alert_id": e.alert_id, "patient_id": e.patient_id, "rule_id": e.rule_id,
            "subject": e.subject, "priority": e.priority, "opened_at_s": e.opened_at_s,
            "resolved_at_s": e.resolved_at_s, "revisions": e.revision, "evidence": e.evidence,
        }
        for e in sorted(episodes.values(), key=lambda e: (e.opened_at_s, e.patient_id, e.rule_id))
    ]  # fmt: skip
    return out
