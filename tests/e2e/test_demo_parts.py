"""The demo's pure parts: the story's clock, moving a scenario before now, the ledger that
accounts for every device record, the receiver's lines, the alert verdict, the story's patients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devices.codecs.plx_spot_check_measurement import PlxSpotCheckMeasurement
from devices.codecs.temperature_measurement import TemperatureMeasurement
from devices.codecs.weight_measurement import WeightMeasurement
from devices.reading import Kind, reading_id_for
from firmware_sims.air import VirtualAir
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.scenario_files import load_scenario
from firmware_sims.vitals_devices import Thermometer, WeightScale
from homevitals.demo_check import StoryPatient, judge_alerts
from homevitals.demo_clock import DemoClock
from homevitals.demo_devices import build_home, care_plan, device_records, rebased
from homevitals.demo_ledger import (
    DeviceRecord,
    Evidence,
    Fate,
    HubDevice,
    Packet,
    account,
    after_cursor,
    tally,
)
from homevitals.demo_progress import story_day
from homevitals.demo_report import Webhook, parse_webhook_line
from homevitals.demo_story import fixed_offset_zone, patient_for

T0 = datetime(2026, 11, 13, 0, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------ the clock


def test_the_clock_stands_still_until_started_then_runs_fast_and_stops_at_now() -> None:
    clock = DemoClock(T0, speed=10_000.0)
    wall = T0 + timedelta(days=14)
    assert clock.at(wall) == T0 and clock.caught_up_at() is None
    running = clock.started(wall)
    assert running.at(wall + timedelta(seconds=6)) == T0 + timedelta(seconds=60_000)
    end = running.caught_up_at()
    assert end is not None
    # it catches up with the wall clock once, then follows it, never ahead
    assert abs((running.at(end) - end).total_seconds()) < 0.05  # microseconds x speed
    later = end + timedelta(minutes=5)
    assert running.at(later) == later
    assert abs(running.running_s() - 14 * 86400 / 9_999) < 1e-6


def test_a_clock_started_at_its_own_start_is_the_wall_clock() -> None:
    clock = DemoClock(T0, speed=100.0).started(T0)
    assert clock.caught_up_at() == T0
    assert clock.at(T0 + timedelta(seconds=7)) == T0 + timedelta(seconds=7)


@pytest.mark.parametrize(
    ("start", "speed"), [(datetime(2026, 11, 13), 100.0), (T0, 1.0), (T0, 0.5)]
)
def test_the_clock_refuses_naive_times_and_speeds_that_never_catch_up(
    start: datetime, speed: float
) -> None:
    with pytest.raises(ValueError, match=r"aware|speed"):
        DemoClock(start, speed)


def test_story_days_are_calendar_days_in_the_patients_zone() -> None:
    start = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Mon 23 Nov 00:00 in Shanghai
    end = start + timedelta(days=14, hours=3)
    assert story_day(start, start, end, "Asia/Shanghai") == (1, 15)
    assert story_day(start + timedelta(hours=23), start, end, "Asia/Shanghai") == (1, 15)
    assert story_day(start + timedelta(hours=25), start, end, "Asia/Shanghai") == (2, 15)


# ----------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("hour", [0, 6, 11, 23])
def test_a_rebased_scenario_ends_before_now_by_whole_days(hour: int) -> None:
    original = load_scenario("discharge-t2-htn")
    now = datetime(2026, 11, 27, hour, 30, tzinfo=UTC)
    moved = rebased(original, now)
    assert (moved.start_utc - original.start_utc).total_seconds() % 86400 == 0
    last = max(s.at_utc for i in range(2) for s in moved.plan(i))
    assert last < now - timedelta(minutes=1)
    assert now - last < timedelta(days=2)
    # same physiology: the planned values do not change with the dates
    assert [s.meter_mg_dl for s in moved.plan(0)] == [s.meter_mg_dl for s in original.plan(0)]


def test_rebased_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        rebased(load_scenario("home-demo"), datetime(2026, 11, 27, 12, 0))


def test_the_story_patients_and_a_scenario_of_its_own() -> None:
    wang = patient_for(load_scenario("discharge-t2-htn"))
    assert (wang.display_name, wang.timezone) == ("Wang Jianguo", "Asia/Shanghai")
    assert wang.conditions == ("diabetes_type_2", "hypertension")
    alone = patient_for(load_scenario("faulty-devices"))
    assert alone.timezone == "Etc/GMT-1" and alone.conditions == ("diabetes", "hypertension")
    assert fixed_offset_zone(-300) == "Etc/GMT+5"
    assert fixed_offset_zone(330) == "UTC"  # no fixed-offset zone for half hours
    plan = care_plan(load_scenario("discharge-t2-htn"))
    assert plan["pat-wang-001"]["bp.home_aha_ama_2020"]["systolic_mmhg"] == 135.0  # type: ignore[index]
    assert plan["pat-wang-001"]["bp.home_esh_7d"] == {"utc_offset_min": 480.0}


async def test_a_heart_failure_home_gets_its_wearables_empty_until_the_story_plays() -> None:
    scenario = rebased(load_scenario("heart-failure-week"), datetime.now(UTC))
    clock = DemoClock(scenario.start_utc, speed=86_400.0)
    async with VirtualAir(supervision_timeout_s=1.0) as air:
        home = await build_home(scenario, air, lambda: clock.at(datetime.now(UTC)), clock.speed)
        try:
            kinds = sorted(type(d).__name__ for d in home.devices)
            held = [home.held_by(d) for d in home.devices]
            scale = next(d for d in home.devices if isinstance(d, WeightScale))
            thermometer = next(d for d in home.devices if isinstance(d, Thermometer))
            weight_raw = scale.weigh(81.4)
            temperature_raw = thermometer.take(38.2)
            oximeter = next(d for d in home.devices if isinstance(d, PulseOximeter))
            spot_raw = oximeter.spot_check(94.0, 71.0)
            weights, temperatures = device_records(scale), device_records(thermometer)
            spots = device_records(oximeter)
            scale.memory[0].delivered = True  # a host confirmed the indication
            confirmed = device_records(scale)
        finally:
            for device in home.devices:
                await device.power_off()
    assert kinds == ["PulseOximeter", "Thermometer", "WeightScale"]
    assert held == [0, 0, 0]  # nothing measured before the story starts
    assert home.readings_planned > 0
    assert home.care_plan[scenario.patient_id]["conditions"] == ["heart_failure"]
    assert home.story.conditions == ("heart_failure",)
    assert home.expected == {"weight.gain_hf_3d": 1, "spo2.low_sustained": 1,
                             "temperature.fever": 1}  # fmt: skip
    # The self-check follows what a scale, a thermometer and an oximeter hold, with the id the
    # hub's session gives (device time: the Time Stamp as sent, `build.episodic_times`).
    for records, raw, kind, codec in (
        (weights, weight_raw, Kind.BODY_WEIGHT, WeightMeasurement),
        (temperatures, temperature_raw, Kind.BODY_TEMPERATURE, TemperatureMeasurement),
        (spots, spot_raw, Kind.SPO2, PlxSpotCheckMeasurement),
    ):
        (record,) = records
        stamp = codec.from_bytes(raw).time_stamp
        assert isinstance(stamp, datetime)
        assert (record.raw, record.sequence, record.sent) == (raw, None, False)
        assert record.reading_id == reading_id_for(
            device_id=record.device_id, kind=kind, sequence=None, device_time=stamp.isoformat()
        )
    assert confirmed[0].sent is True


# ---------------------------------------------------------------------------- the ledger

METER, CUFF = "meter-1", "cuff-1"


def _meter(seq: int, rid: str) -> DeviceRecord:
    return DeviceRecord(METER, "Contour ...0777", rid, seq, bytes([0x1B, seq & 0xFF, 0x01, 0x02]))


def _cuff(rid: str, sent: bool, raw: bytes = b"\x1e\x7e\x00\x4a\x00\x5b\x00") -> DeviceRecord:
    return DeviceRecord(CUFF, "X4 Smart ...01F9", rid, None, raw, sent=sent)


def test_every_record_is_accounted_for_with_its_reason() -> None:
    records = [
        _meter(65534, "m1"),
        _meter(65535, "m2"),
        _meter(65535, "m2"),  # the device kept this one twice
        _meter(0, "m3"),  # quarantined by ingest
        _meter(1, "m4"),  # after the hub's cursor: the next sync fetches it
        _cuff("c1", sent=True),
        _cuff("c2", sent=True, raw=b"\x1e\x80\x00\x4d\x00\x5e\x00\x01"),  # truncated on the air
        _cuff("c3", sent=False),  # not sent yet
    ]
    evidence = Evidence(
        stored=frozenset({"m1", "m2", "c1"}),
        quarantined={"m3": "patient_id: not_enrolled"},
        packets=[Packet(CUFF, b"\x1e\x80\x00\x4d\x00\x5e\x00", "truncated measurement status")],
        hub_devices={METER: HubDevice(last_sequence=0, last_outcome="disconnected")},
    )
    entries = account(records, evidence)
    assert [e.fate for e in entries] == [
        Fate.STORED, Fate.STORED, Fate.DUPLICATE, Fate.QUARANTINED, Fate.ON_DEVICE,
        Fate.STORED, Fate.QUARANTINED, Fate.ON_DEVICE,
    ]  # fmt: skip
    assert entries[3].reason == "patient_id: not_enrolled"
    assert entries[4].reason.startswith("after the hub's cursor (sequence 0, its last session "
                                        "ended disconnected)")  # fmt: skip
    assert entries[6].reason == "truncated measurement status"
    assert entries[7].reason.startswith("not sent yet")
    summary = tally(entries)
    assert summary.ok and summary.produced == 8
    assert summary.count(Fate.STORED) == 3 and summary.count(Fate.DUPLICATE) == 1


def test_a_record_found_nowhere_is_unaccounted_and_fails_the_check() -> None:
    records = [
        _meter(4, "m1"),  # behind the hub's cursor, yet not stored: lost
        _cuff("c1", sent=True),  # the cuff was told it was delivered: lost
        _cuff("c2", sent=True),  # committed on the hub, not yet confirmed by ingest
    ]
    evidence = Evidence(on_hub=frozenset({"c2"}), hub_devices={METER: HubDevice(last_sequence=9)})
    entries = account(records, evidence)
    assert [e.fate for e in entries] == [Fate.UNACCOUNTED, Fate.UNACCOUNTED, Fate.ON_HUB]
    summary = tally(entries)
    assert not summary.ok
    assert summary.count(Fate.UNACCOUNTED) == 2


def test_a_quarantined_packet_accounts_for_one_record_only() -> None:
    raw = b"\x1e\x7e\x00\x4a\x00\x5b\x00"
    records = [_cuff("c1", sent=True, raw=raw + b"\x01"), _cuff("c2", sent=True, raw=raw + b"\x02")]
    evidence = Evidence(packets=[Packet(CUFF, raw, "truncated")])
    fates = [e.fate for e in account(records, evidence)]
    assert fates == [Fate.QUARANTINED, Fate.UNACCOUNTED]
    # a packet of another device accounts for nothing
    other = Evidence(packets=[Packet("another-cuff", raw, "truncated")])
    assert [e.fate for e in account(records[:1], other)] == [Fate.UNACCOUNTED]


@pytest.mark.parametrize(
    ("sequence", "cursor", "ahead"),
    [(5, None, True), (5, 4, True), (4, 4, False), (3, 4, False), (0, 65535, True),
     (65535, 65530, True), (65530, 3, False), (32772, 4, True), (32773, 4, False)],
)  # fmt: skip
def test_after_the_cursor_is_the_half_of_the_sequence_space_after_it(
    sequence: int, cursor: int | None, ahead: bool
) -> None:
    assert after_cursor(sequence, cursor) is ahead


def test_reasons_that_quote_bytes_count_together() -> None:
    records = [_cuff("c1", sent=True, raw=b"\x01\x02"), _cuff("c2", sent=True, raw=b"\x03\x04")]
    evidence = Evidence(
        packets=[Packet(CUFF, b"\x01", "field x at byte 1 (payload 01)"),
                 Packet(CUFF, b"\x03", "field x at byte 1 (payload 03)")]
    )  # fmt: skip
    assert tally(account(records, evidence)).reasons == {(Fate.QUARANTINED, "field x at byte 1"): 2}


# ------------------------------------------------------------------ webhooks and alerts


def test_receiver_lines_become_webhooks_and_other_lines_are_skipped() -> None:
    line = ('{"event": {"data": {"alert_id": "a1", "event_id": "e1", "priority": "high", '
            '"rule_id": "glucose.hypo_l2", "patient": {"reference": "Patient/pat-1"}, '
            '"links": {"alert": "http://api/v1/alerts/a1"}}, "timestamp": '
            '"2026-11-27T12:00:00Z", "type": "alert.opened"}, "webhook_id": "e1"}')  # fmt: skip
    hook = parse_webhook_line(line)
    assert hook is not None
    assert (hook.webhook_id, hook.type, hook.rule_id, hook.priority, hook.alert_id) == (
        "e1", "alert.opened", "glucose.hypo_l2", "high", "a1")  # fmt: skip
    assert (hook.patient_id, hook.alert_link) == ("pat-1", "http://api/v1/alerts/a1")
    assert parse_webhook_line("listening on http://127.0.0.1:8787/") is None
    assert parse_webhook_line('{"event": "not an object"}') is None


def test_declared_alerts_need_enough_distinct_opened_alerts_of_their_patient() -> None:
    wang = StoryPatient("pat-1", "Wang Jianguo", "gw-1", "hub-pat-1", {"glucose.hypo_l2": 2})
    li = StoryPatient("pat-2", "Li Mei", "gw-2", "hub-pat-2", {})

    def hook(event: str, kind: str, rule: str, alert: str, patient: str) -> Webhook:
        return Webhook(event, kind, rule, "high", alert, {}, patient_id=patient)

    hooks = [
        hook("e1", "alert.opened", "glucose.hypo_l2", "a1", "pat-1"),
        hook("e2", "alert.updated", "glucose.hypo_l2", "a1", "pat-1"),
        hook("e3", "alert.opened", "glucose.hypo_l2", "a2", "pat-2"),  # the other patient's
    ]
    checks, undeclared = judge_alerts([wang, li], hooks)
    assert [(c.rule_id, c.have, c.need) for c in checks] == [("glucose.hypo_l2", 1, 2)]
    assert undeclared == {"glucose.hypo_l2 for Li Mei": 1}
    hooks.append(hook("e4", "alert.opened", "glucose.hypo_l2", "a3", "pat-1"))
    checks, _ = judge_alerts([wang, li], hooks)
    assert checks[0].have == 2
