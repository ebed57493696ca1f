"""Scenario files: every shipped one parses and its expected alerts are true of its own data;
bad files fail naming the key."""

from __future__ import annotations

import pytest

from firmware_sims.errors import ScenarioError
from firmware_sims.expectations import scenario_evidence
from firmware_sims.scenario import parse_scenario
from firmware_sims.scenario_files import load_scenario, shipped_scenarios

MINIMAL = """
name = "x"
seed = 1
start = 2026-03-01T00:00:00Z
days = 2
time_acceleration = 1000.0
[patient]
id = "p1"
[[devices]]
model = "contour-like"
serial = "S1"
"""


@pytest.mark.parametrize("name", shipped_scenarios())
def test_shipped_scenario_expects_exactly_what_its_data_shows(name: str) -> None:
    scenario = load_scenario(name)
    evidence = scenario_evidence(scenario)
    for alert in scenario.expected_alerts:
        assert evidence.get(alert.rule, 0) >= alert.min_count, (alert, evidence)
    if scenario.only_expected_alerts:
        assert set(evidence) == {a.rule for a in scenario.expected_alerts}


def test_at_least_the_issue_s_scenarios_are_shipped() -> None:
    assert {"t1-hypo-week", "t2-stable-month", "hypertension-trend", "bp-crisis"} <= set(
        shipped_scenarios()
    )


def test_minimal_scenario_gets_defaults_and_a_random_static_address() -> None:
    scenario = parse_scenario(MINIMAL)
    device = scenario.devices[0]
    assert device.glucose is not None and device.blood_pressure is None
    assert int(device.address[:2], 16) & 0xC0 == 0xC0
    assert scenario.expected_alerts == ()


def test_a_cgm_in_a_scenario_records_its_own_trace() -> None:
    text = MINIMAL.replace('"contour-like"', '"cgm-like"') + "sensor_start_day = 1\n"
    scenario = parse_scenario(text)
    [device] = scenario.devices
    assert device.glucose is not None and device.sensor_start_day == 1
    assert scenario.plan(0) == []  # no fingersticks: the CGM samples every 5 minutes


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace('name = "x"\n', ""), "name"),
        (lambda t: t.replace("days = 2", "days = 0"), "days"),
        (lambda t: t.replace("2026-03-01T00:00:00Z", "2026-03-01T00:00:00"), "start"),
        (lambda t: t.replace('"contour-like"', '"nope"'), "devices[0].model"),
        (
            lambda t: t + "[devices.glucose]\nfasting_mg_dl = 5.0\n",
            "devices[0].glucose.fasting_mg_dl",
        ),
        (lambda t: t + "[devices.glucose]\nwobble = 1\n", "devices[0].glucose.wobble"),
        (
            lambda t: t + "[devices.faults]\nduplicate_every = 0\n",
            "devices[0].faults.duplicate_every",
        ),
        (lambda t: t + "[devices.blood_pressure]\n", "devices[0].blood_pressure"),
        (lambda t: t + '[[expected_alerts]]\nrule = "glucose.bogus"\n', "expected_alerts[0].rule"),
        (lambda t: "surprise = 1\n" + t, "surprise"),
        (lambda t: t + "surprise = 1\n", "devices[0].surprise"),
        (lambda t: t.replace("days = 2", "days = 2\ndays = 3"), "<toml>"),
        (lambda t: t + "sensor_start_day = 1\n", "devices[0].sensor_start_day"),  # a meter
        (lambda t: t.replace('"contour-like"', '"polar-like"'), "devices[0].model"),
    ],
)
def test_invalid_scenarios_name_the_offending_key(edit: object, field: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(edit(MINIMAL), source="test.toml")  # type: ignore[operator]
    assert error.value.field == field
    assert "test.toml" in str(error.value)


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="t1-hypo-week"):
        load_scenario("no-such-scenario")
