"""Blood-pressure cuff session: indications committed one by one, re-sends deduped."""

from __future__ import annotations

from devices.reading import Kind, Special, device_id_for, reading_id_for
from devices.sessions import (
    BloodPressureSession,
    Disconnected,
    Notified,
    Outcome,
    Read,
    SessionParams,
    gatt,
)
from tests.devices.sessions.harness import CUFF_CHARS, NOW, Script, drive, inventory

# flags 0x1E: mmHg, time stamp, pulse, user id, status. 120/80/93 mmHg (SFLOAT exponent 0),
# 2026-11-27 07:30:00, pulse 72, user 1, status 0x0004 (irregular pulse).
BPM_1 = bytes.fromhex("1E780050005D00EA070B1B071E004800010400")
# flags 0x01: kPa, no time stamp: 16.0/10.7/12.5 kPa as 160e-1, 107e-1, 125e-1 (0xF0A0 ...).
BPM_KPA = bytes.fromhex("01A0F06BF07DF0")
# flags 0x00 with MAP = NaN (0x07FF)
BPM_NAN_MAP = bytes.fromhex("0078005000FF07")


def params() -> SessionParams:
    return SessionParams(patient_id="patient-1", gateway_id="gw-1", silence_timeout_s=3.0)


def ind(data: bytes) -> Notified:
    return Notified(gatt.BLOOD_PRESSURE_MEASUREMENT, data)


def test_each_indication_is_committed_at_once_and_resends_are_dropped() -> None:
    session = BloodPressureSession(params(), inventory(CUFF_CHARS))
    run = drive(session, Script(after_subscribe=[ind(BPM_1), ind(BPM_1), ind(BPM_NAN_MAP)]))
    assert len(run.ready) == 2 and all(len(r.readings) == 1 for r in run.ready)
    first = run.readings[0]
    device_id = device_id_for(manufacturer="Acme", model="GM-1", serial="MTR-0001")
    assert first.reading_id == reading_id_for(
        device_id=device_id,
        kind=Kind.BLOOD_PRESSURE,
        sequence=None,
        device_time="2026-11-27T07:30:00",
    )
    assert first.values == {
        "systolic_mmhg": 120.0,
        "diastolic_mmhg": 80.0,
        "mean_arterial_mmhg": 93.0,
        "pulse_per_min": 72.0,
    }
    assert "irregular_pulse" in first.status and first.context == {"user_id": 1}
    assert (
        run.ready[0].cursor is not None
        and run.ready[0].cursor.last_device_time == "2026-11-27T07:30:00"
    )
    assert run.readings[1].values["mean_arterial_mmhg"] is Special.NAN
    assert run.ended is not None and run.ended.outcome is Outcome.COMPLETE
    assert run.ended.stats["duplicates"] == 1


def test_kpa_is_converted_and_a_missing_time_stamp_is_flagged() -> None:
    session = BloodPressureSession(params(), inventory(CUFF_CHARS))
    run = drive(session, Script(after_subscribe=[ind(BPM_KPA), Disconnected("cuff done")]))
    [reading] = run.readings
    assert round(float(reading.values["systolic_mmhg"]), 1) == 120.0
    assert [o.unit for o in reading.original] == ["kPa", "kPa", "kPa"]
    assert "device_time_absent" in reading.status
    assert reading.measured_at == reading.received_at and reading.received_at >= NOW
    assert run.ended is not None and run.ended.outcome is Outcome.COMPLETE


def test_a_malformed_indication_is_quarantined_at_once() -> None:
    session = BloodPressureSession(params(), inventory(CUFF_CHARS))
    run = drive(session, Script(after_subscribe=[ind(bytes.fromhex("1E7800")), ind(BPM_1)]))
    assert run.ready[0].readings == () and run.ready[0].quarantined[0].raw == bytes.fromhex(
        "1E7800"
    )
    assert run.ready[0].cursor is None
    assert len(run.readings) == 1


def test_a_cuff_with_nothing_to_send_ends_quietly() -> None:
    run = drive(BloodPressureSession(params(), inventory(CUFF_CHARS)), Script())
    assert run.ready == [] and run.ended is not None and run.ended.outcome is Outcome.NOTHING_NEW


def test_a_link_lost_before_the_transfer_is_a_disconnect_not_an_end() -> None:
    def drop(cmd: object) -> list | None:  # type: ignore[type-arg]
        if isinstance(cmd, Read) and cmd.uuid == gatt.CURRENT_TIME:
            return [Disconnected("supervision timeout")]
        return None

    run = drive(BloodPressureSession(params(), inventory(CUFF_CHARS)), Script(on_command=drop))
    assert run.ended is not None and run.ended.outcome is Outcome.DISCONNECTED
