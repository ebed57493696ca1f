"""Scenario files: every shipped one parses and its expected alerts are true of its own data;
bad files fail naming the key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from firmware_sims.air import VirtualAir
from firmware_sims.errors import ScenarioError
from firmware_sims.expectations import scenario_evidence
from firmware_sims.runner import cgm_for
from firmware_sims.scenario import parse_scenario
from firmware_sims.scenario_files import load_scenario, shipped_scenarios
from firmware_sims.wearable_plans import CgmSample, HeartRateMinute, Spo2SpotCheck

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


async def test_a_cgms_plan_is_what_the_simulated_sensor_records(air: VirtualAir) -> None:
    text = MINIMAL.replace('"contour-like"', '"cgm-like"') + "sensor_start_day = 1\n"
    scenario = parse_scenario(text)
    [device] = scenario.devices
    assert device.glucose is not None and device.sensor_start_day == 1
    plan = scenario.plan(0)
    assert all(isinstance(s, CgmSample) for s in plan)
    # A day's session after the one-hour warm-up, a reading every 5 minutes.
    assert len(plan) == (24 * 60 - 60) // 5 + 1
    sensor = cgm_for(scenario, 0, air)
    sensor.advance_to(scenario.start_utc + timedelta(days=scenario.days))
    recorded = [(r.measurement.time_offset_min, r.measurement.glucose_concentration_mg_dl.value)
                for r in sensor.racp.records]  # fmt: skip
    assert recorded == [(s.offset_min, s.glucose_mg_dl) for s in plan]  # type: ignore[union-attr]


WEARABLES = """
[[devices]]
model = "polar-like"
serial = "H1"
stream_hours = [22, 7]
[devices.heart_rate]
resting_bpm = 60.0
rest_episodes_s = [[3600, 7200, 120.0]]
[[devices]]
model = "oximeter-like"
serial = "O1"
reading_hours = [9]
[devices.spo2]
desaturations_s = [[28800, 36000, 80]]
[[devices]]
model = "thermometer-like"
serial = "T1"
[devices.temperature]
fever_days = [1]
[[devices]]
model = "scale-like"
serial = "W1"
[devices.weight]
retention_days = [0]
noise_sd_kg = 0.0
"""


def test_every_wearable_is_accepted_and_planned() -> None:
    scenario = parse_scenario(MINIMAL + WEARABLES)
    strap, oximeter, thermometer, scale = (scenario.plan(i) for i in range(1, 5))
    # The strap is worn 22:00-07:00 (UTC here): 9 hours a night, summarized per minute.
    assert len(strap) == 2 * 9 * 60 and all(isinstance(s, HeartRateMinute) for s in strap)
    episode = [s for s in strap if 3600 <= (s.at_utc - scenario.start_utc).total_seconds() < 7200]
    assert min(s.mean_bpm for s in episode[5:]) > 110  # type: ignore[union-attr]
    # Spot-checks at 09:05; the day-0 one falls in the desaturation and is measured again.
    spots = [s for s in oximeter if isinstance(s, Spo2SpotCheck)]
    assert [s.at_utc.strftime("%d %H:%M") for s in spots] == ["01 09:05", "01 09:15", "02 09:05"]
    assert spots[0].spo2_pct < 92
    assert [s.at_utc.hour for s in thermometer] == [8, 20, 8, 20]
    assert max(s.temperature_c for s in thermometer[2:]) >= 38.0  # type: ignore[union-attr]
    assert [(s.at_utc.hour, s.weight_kg) for s in scale] == [(7, 78.0), (7, 78.8)]  # type: ignore[union-attr]
    assert scenario.devices[3].reading_hours == (8, 20) and scenario.devices[2].stream_hours is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('[[devices]]\nmodel = "scale-like"\nserial = "W"\n[devices.glucose]\n',
         "devices[1].glucose"),
        ('[[devices]]\nmodel = "polar-like"\nserial = "H"\nreading_hours = [8]\n',
         "devices[1].reading_hours"),
        ('[[devices]]\nmodel = "oximeter-like"\nserial = "O"\nstream_hours = [7, 7]\n',
         "devices[1].stream_hours"),
        ('[[devices]]\nmodel = "polar-like"\nserial = "H"\n[devices.heart_rate]\n'
         "rest_episodes_s = [[10, 5, 90]]\n", "devices[1].heart_rate.windows"),
        ('[[devices]]\nmodel = "oximeter-like"\nserial = "O"\n[devices.spo2]\n'
         'desaturations_s = [[1, "x"]]\n', "devices[1].spo2.desaturations_s"),
        ('[[devices]]\nmodel = "thermometer-like"\nserial = "T"\nreading_hours = [25]\n',
         "devices[1].reading_hours"),
    ],
)  # fmt: skip
def test_bad_wearable_keys_are_named(extra: str, field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(MINIMAL + extra)
    assert err.value.field == field


def test_patient_conditions() -> None:
    text = MINIMAL.replace('id = "p1"', 'id = "p1"\nconditions = ["heart_failure", "copd"]')
    assert parse_scenario(text).conditions == ("heart_failure", "copd")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(MINIMAL.replace('id = "p1"', 'id = "p1"\nconditions = "copd"'))
    assert err.value.field == "patient.conditions"


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
        (
            lambda t: t.replace('"contour-like"', '"polar-like"') + "[devices.glucose]\n",
            "devices[0].glucose",
        ),  # a strap takes [heart_rate]
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
