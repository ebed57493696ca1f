"""The demo's pure parts: moving a scenario before now, the history review's clock, the
receiver's output lines, the home's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_sims.air import VirtualAir
from firmware_sims.scenario_files import load_scenario
from homevitals.demo_devices import build_home, care_plan, gateway_timezone, rebased
from homevitals.demo_engine import step_times
from homevitals.demo_report import DemoReport, Webhook, parse_webhook_line


@pytest.mark.parametrize("hour", [0, 6, 11, 23])
def test_a_rebased_scenario_ends_before_now_by_whole_days(hour: int) -> None:
    original = load_scenario("t1-hypo-week")
    now = datetime(2026, 11, 27, hour, 30, tzinfo=UTC)
    moved = rebased(original, now)
    shift = moved.start_utc - original.start_utc
    assert shift.total_seconds() % 86400 == 0
    last = max(s.at_utc for s in moved.plan(0))
    assert last < now - timedelta(minutes=1)
    assert now - last < timedelta(days=2)
    # same physiology: the planned values do not change with the dates
    assert [s.meter_mg_dl for s in moved.plan(0)] == [s.meter_mg_dl for s in original.plan(0)]


def test_rebased_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        rebased(load_scenario("home-demo"), datetime(2026, 11, 27, 12, 0))


def test_step_times_follow_readings_and_the_hour_and_end_now() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    readings = [now - timedelta(hours=2, minutes=30), now - timedelta(minutes=10)]
    steps = step_times(readings, now, timedelta(hours=1))
    assert steps == [
        now - timedelta(hours=2, minutes=30),
        now - timedelta(hours=2, minutes=29, seconds=59),
        now - timedelta(hours=1, minutes=30),
        now - timedelta(minutes=30),
        now - timedelta(minutes=9, seconds=59),
        now,
    ]
    assert step_times([], now, timedelta(hours=1)) == [now]


@pytest.mark.parametrize("step", [timedelta(0), timedelta(minutes=-5)])
def test_step_times_refuse_a_step_that_does_not_move(step: timedelta) -> None:
    with pytest.raises(ValueError, match="step"):
        step_times([], datetime(2026, 11, 27, tzinfo=UTC), step)


def test_receiver_lines_become_webhooks_and_other_lines_are_skipped() -> None:
    line = ('{"event": {"data": {"alert_id": "a1", "event_id": "e1", "priority": "high", '
            '"rule_id": "glucose.hypo_l2"}, "timestamp": "2026-11-27T12:00:00Z", '
            '"type": "alert.opened"}, "webhook_id": "e1"}')  # fmt: skip
    hook = parse_webhook_line(line)
    assert hook is not None
    assert (hook.webhook_id, hook.type, hook.rule_id, hook.priority, hook.alert_id) == (
        "e1", "alert.opened", "glucose.hypo_l2", "high", "a1")  # fmt: skip
    assert parse_webhook_line("listening on http://127.0.0.1:8787/") is None
    assert parse_webhook_line('{"event": "not an object"}') is None


def test_the_report_passes_only_with_enough_distinct_opened_alerts() -> None:
    report = DemoReport(directory=Path("."), expected={"glucose.hypo_l2": 2})
    report.webhooks.append(Webhook("e1", "alert.opened", "glucose.hypo_l2", "high", "a1", {}))
    report.webhooks.append(Webhook("e2", "alert.updated", "glucose.hypo_l2", "high", "a1", {}))
    assert report.missing() == {"glucose.hypo_l2": "1 of 2 alert.opened webhooks"}
    report.webhooks.append(Webhook("e3", "alert.opened", "glucose.hypo_l2", "high", "a2", {}))
    assert report.ok
    assert report.summary_lines()[-1] == "result: PASS"


def test_time_zone_and_care_plan_follow_the_scenario() -> None:
    assert gateway_timezone(60) == "Etc/GMT-1"
    assert gateway_timezone(-300) == "Etc/GMT+5"
    assert gateway_timezone(0) == "UTC"
    assert gateway_timezone(330) == "UTC"  # no fixed-offset zone for half hours
    plan = care_plan(load_scenario("home-demo"))
    assert plan["pat-demo-001"]["bp.home_aha_ama_2020"]["systolic_mmhg"] == 135.0
    assert plan["pat-demo-001"]["bp.home_esh_7d"] == {"utc_offset_min": 60.0}


async def test_a_heart_failure_home_holds_its_wearables_history() -> None:
    scenario = rebased(load_scenario("heart-failure-week"), datetime.now(UTC))
    async with VirtualAir(supervision_timeout_s=1.0) as air:
        home = await build_home(scenario, air)
        try:
            held = {type(d).__name__: home.held_by(d) for d in home.devices}
            planned = {spec.model.kind.value: len(scenario.plan(i))
                       for i, spec in enumerate(scenario.devices)}  # fmt: skip
        finally:
            for device in home.devices:
                await device.power_off()
    assert held == {"WeightScale": planned["weight_scale"],
                    "PulseOximeter": planned["pulse_oximeter"],
                    "Thermometer": planned["thermometer"]}  # fmt: skip
    assert home.care_plan[scenario.patient_id]["conditions"] == ["heart_failure"]
    assert home.expected == {"weight.gain_hf_3d": 1, "spo2.low_sustained": 1,
                             "temperature.fever": 1}  # fmt: skip
