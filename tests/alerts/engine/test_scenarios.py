"""The simulated physiology of firmware_sims' shipped scenarios, through the engine.

Each scenario declares the alerts its readings must raise (`expected_alerts`, and with
`only_expected_alerts` nothing else). The planned readings (what the meters and cuffs will
show, the same generator the simulated devices use) are replayed through the rules over the
scenario's days, with the patient's UTC offset in the care plan.

Scenarios name engine rule ids. Their `bp.home_aha_ama_2020` means "mean of the last 7 days
>= 135/85" (firmware_sims/expectations.py): the care plan here sets that traditional threshold
on the engine rule, and the other two home protocols (the same finding under another
averaging protocol) may fire with it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.engine.replay import replay
from firmware_sims.scenario_files import load_scenario, shipped_scenarios
from tests.alerts.engine.scenario_support import care_plan, columns, profiles, webhook_counts

SAME_FINDING = {"bp.home_aha_ama_2020": {"bp.home_esh_7d", "bp.home_china_2019"}}


def _scenarios() -> list[str]:
    return [name for name in shipped_scenarios() if load_scenario(name).expected_alerts
            or load_scenario(name).only_expected_alerts]  # fmt: skip


@pytest.mark.parametrize("name", _scenarios())
def test_scenario_raises_its_declared_alerts(name: str) -> None:
    scenario = load_scenario(name)
    cols = columns(scenario)
    start = int(scenario.start_utc.timestamp())
    end = int((scenario.start_utc + timedelta(days=scenario.days)).timestamp())
    episodes = replay(
        cols, start, end, step_s=6 * 3600, overrides=care_plan(scenario),
        profiles=profiles(scenario),
    )  # fmt: skip
    fired: dict[str, int] = {}
    for episode in episodes:
        rule = str(episode["rule_id"])
        fired[rule] = fired.get(rule, 0) + 1
    expected = {e.rule: e.min_count for e in scenario.expected_alerts}
    for rule, count in expected.items():
        assert fired.get(rule, 0) >= count, (rule, fired)
    if scenario.only_expected_alerts:
        allowed = set(expected).union(*(SAME_FINDING.get(rule, set()) for rule in expected))
        assert set(fired) <= allowed, fired


def test_the_crisis_week_pushes_an_opening_per_episode_not_every_revision() -> None:
    # Evaluated as a live engine would (after every reading and hourly): the record keeps every
    # revision, the care team gets the openings, the escalations and the resolution.
    counts = webhook_counts("bp-crisis")
    assert counts["updated_recorded"] > 20
    assert counts["updated_pushed"] <= counts["opened"]
    assert counts["opened"] + counts["updated_pushed"] + counts["resolved"] <= 10
