"""Offline evaluation: which alerts would be open at `now` for a file of readings (pure).

No prior state: every rule starts closed, so what is reported is what the rules' opening
conditions say at `now` (hysteresis only matters to an engine that remembers). Only readings
measured and received by `now` count (`visible_at`); every one of them is new to this
evaluation, so a late reading received within `max_age_h` shows as a late finding.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from alerts.engine.episodes import plan_changes
from alerts.engine.evaluate import Profiles, evaluate_all, horizon_s, no_prior_state
from alerts.events import EventType
from alerts.rules.catalog import RULES, Overrides, Rule
from alerts.rules.columns import ReadingColumns
from alerts.rules.result import BoolArray


def visible_at(cols: ReadingColumns, now_s: int) -> BoolArray:
    """Rows measured and received at or before `now_s`."""
    mask: BoolArray = (cols.measured_at_s <= now_s) & (cols.received_at_s <= now_s)
    return mask


def open_alerts_at(
    cols: ReadingColumns,
    now_s: int,
    *,
    overrides: Overrides | None = None,
    rules: Iterable[Rule] = RULES,
    profiles: Profiles | None = None,
) -> list[dict[str, object]]:
    """One JSON-ready object per alert open at `now_s`, sorted by patient then rule.

    Raises:
        RuleParameterError: a care-plan override is unusable.
    """
    rules = list(rules)
    t = cols.measured_at_s
    cols = cols.take(visible_at(cols, now_s) & (t >= now_s - horizon_s(rules, overrides)))
    results = evaluate_all(
        cols, now_s, prior=no_prior_state(), overrides=overrides, rules=rules, profiles=profiles
    )
    changes = plan_changes(
        results, cols, [], new_rows=np.zeros(len(cols), dtype=np.bool_), now_s=now_s,
        profiles=profiles,
    )  # fmt: skip
    out: list[dict[str, object]] = [
        {
            "alert_id": c.alert_id,
            "patient_id": c.patient_id,
            "rule_id": c.rule_id,
            "subject": c.subject,
            "priority": c.priority.value,
            "late": c.subject == "late",
            "evidence": dict(c.evidence),
        }
        for c in changes
        if c.type == EventType.ALERT_OPENED
    ]
    out.sort(key=lambda a: (str(a["patient_id"]), str(a["rule_id"]), str(a["subject"])))
    return out
