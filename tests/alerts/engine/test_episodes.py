"""Episode planning (pure): resolve-then-reopen in one evaluation, deterministic ids."""

from __future__ import annotations

import numpy as np

from alerts.engine.episodes import OpenEpisode, alert_id_for, plan_changes, prior_state
from alerts.engine.evaluate import evaluate_all
from alerts.events import EventType
from alerts.rules.catalog import RULES_BY_ID
from alerts.rules.columns import KindCode, build_columns

NOW_S = 1_772_352_000
RULE = RULES_BY_ID["glucose.hypo_l2"]


def _cols(values: list[float]) -> object:
    n = len(values)
    return build_columns(
        ["p"] * n, [NOW_S - 3600 * (n - i) for i in range(n)], [KindCode.GLUCOSE] * n,
        glucose_mmol_l=values, reading_ref=[f"r{i}" for i in range(n)],
        cursor=list(range(1, n + 1)),
    )  # fmt: skip


def test_an_open_episode_cleared_and_a_new_low_in_one_batch() -> None:
    cols = _cols([2.5, 6.0, 2.6])  # r0 opened the episode earlier; r1 clears it; r2 is low again
    first_id = alert_id_for(RULE.rule_id, RULE.version, "p", "", "r0")
    episode = OpenEpisode(first_id, "p", RULE.rule_id, "", 1, "r0", "r0")
    results = evaluate_all(cols, NOW_S, prior=prior_state(cols, [episode]), rules=[RULE])  # type: ignore[arg-type]
    new_rows = cols.cursor > 1  # type: ignore[attr-defined]
    changes = plan_changes(results, cols, [episode], new_rows=new_rows)  # type: ignore[arg-type]
    assert [(c.type, c.alert_id, c.revision) for c in changes] == [
        (EventType.ALERT_RESOLVED, first_id, 2),
        (EventType.ALERT_OPENED, alert_id_for(RULE.rule_id, RULE.version, "p", "", "r2"), 1),
    ]
    assert changes[0].evidence["cleared_by"] == "r1"


def test_same_evidence_gives_the_same_alert_id_and_known_ids_are_not_reopened() -> None:
    cols = _cols([2.5])
    results = evaluate_all(cols, NOW_S, prior=prior_state(cols, []), rules=[RULE])  # type: ignore[arg-type]
    new_rows = np.ones(1, dtype=bool)
    (opened,) = plan_changes(results, cols, [], new_rows=new_rows)  # type: ignore[arg-type]
    assert opened.alert_id == alert_id_for(RULE.rule_id, RULE.version, "p", "", "r0")
    again = plan_changes(
        results, cols, [], new_rows=new_rows, known_alert_ids=frozenset({opened.alert_id})
    )  # type: ignore[arg-type]
    assert again == []
