"""Glucose RACP session: literal byte vectors in, exact commands and readings out."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from devices.codecs.glucose_measurement import (
    GlucoseMeasurement,
    GlucoseSampleLocation,
    GlucoseType,
)
from devices.codecs.sfloat import SFloat
from devices.reading import CONTROL_SOLUTION, Kind, device_id_for, reading_id_for
from devices.sessions import (
    ClockRead,
    DeviceCursor,
    Disconnected,
    GlucoseSession,
    Notified,
    OperationFailed,
    Outcome,
    Pair,
    Read,
    SessionParams,
    Subscribe,
    Write,
    WriteDone,
    gatt,
)
from tests.devices.sessions.harness import (
    METER_CHARS,
    Script,
    drive,
    inventory,
    racp_code,
    racp_success,
)

DEVICE_ID = device_id_for(manufacturer="Acme", model="GM-1", serial="MTR-0001")
# flags 0x17: time offset, concentration+type/location, mol/L, context follows.
# seq 1, base time 2026-11-27 08:00:00, offset 0 min, 0xC037 = 55e-4 mol/L = 5.5 mmol/L,
# type 1 capillary whole blood / location 1 finger.
MEAS_1 = bytes.fromhex("170100EA070B1B080000000037C011")
# context flags 0x02 (meal), seq 1, meal 1 preprandial
CTX_1 = bytes.fromhex("02010001")
ALL = bytes.fromhex("0101")
LAST = bytes.fromhex("0106")


def params(**kw: object) -> SessionParams:
    base: dict[str, object] = {"patient_id": "patient-1", "gateway_id": "gw-1"}
    base.update(kw)
    return SessionParams(**base)  # type: ignore[arg-type]


def meas(seq: int, minute: int | None = None, *, context: bool = False, **kw: object) -> Notified:
    base = datetime(2026, 11, 1, 7, 0) + timedelta(minutes=seq if minute is None else minute)
    fields: dict[str, object] = {
        "sequence_number": seq,
        "base_time": base,
        "time_offset_min": 0,
        "concentration": SFloat.from_value(0.0061, exponent=-4),
        "type": GlucoseType.CAPILLARY_PLASMA,
        "sample_location": GlucoseSampleLocation.FINGER,
        "context_follows": context,
    }
    fields.update(kw)
    return Notified(gatt.GLUCOSE_MEASUREMENT, bytes(GlucoseMeasurement.build(**fields)))  # type: ignore[arg-type]


def report_from(seq: int) -> bytes:
    return bytes((0x01, 0x03, 0x01)) + seq.to_bytes(2, "little")


def range_from(seq: int) -> bytes:
    """Report stored records within seq .. seq+32767: the half of the space after seq-1."""
    return (
        bytes((0x01, 0x04, 0x01)) + seq.to_bytes(2, "little") + (seq + 32767).to_bytes(2, "little")
    )


def test_first_session_bonds_identifies_reads_clock_subscribes_then_fetches_all() -> None:
    session = GlucoseSession(params(), inventory(METER_CHARS))
    script = Script(
        racp={
            ALL: [
                Notified(gatt.GLUCOSE_MEASUREMENT, MEAS_1),
                Notified(gatt.GLUCOSE_MEASUREMENT_CONTEXT, CTX_1),
                racp_success(),
            ]
        }
    )
    run = drive(session, script)
    kinds = [type(c).__name__ for c in run.commands]
    assert kinds == [
        "Pair",
        "Read",
        "Read",
        "Read",
        "Read",
        "Subscribe",
        "Subscribe",
        "Subscribe",
        "Write",
        "Disconnect",
    ]
    assert [c.uuid for c in run.commands if isinstance(c, Subscribe)] == [
        gatt.GLUCOSE_MEASUREMENT,
        gatt.GLUCOSE_MEASUREMENT_CONTEXT,
        gatt.RECORD_ACCESS_CONTROL_POINT,
    ]
    assert run.writes == [ALL]
    assert run.ended is not None and run.ended.outcome is Outcome.COMPLETE
    [ready] = run.ready
    [reading] = ready.readings
    assert ready.cursor == DeviceCursor(1, "2026-11-27T08:00:00")
    assert reading.reading_id == reading_id_for(
        device_id=DEVICE_ID, kind=Kind.GLUCOSE, sequence=1, device_time="2026-11-27T08:00:00"
    )
    assert reading.device.serial == "MTR-0001" and reading.device.id == DEVICE_ID
    assert reading.values == {"glucose_mmol_l": 5.5}
    assert reading.context == {
        "meal": "preprandial",
        "sample_type": "capillary_whole_blood",
        "sample_location": "finger",
    }
    # The meter is 30 s fast: 08:00:00 on its clock was 07:59:30 UTC.
    assert reading.clock_offset_s is not None and abs(reading.clock_offset_s - 30.0) < 0.1
    assert (
        abs((reading.measured_at - datetime(2026, 11, 27, 7, 59, 30, tzinfo=UTC)).total_seconds())
        < 0.1
    )
    assert reading.status == ()
    clock = [e for e in run.events if isinstance(e, ClockRead)]
    assert clock and clock[0].device_time == "2026-11-27T08:00:30" and not clock[0].will_set


def test_with_a_cursor_asks_for_the_half_of_the_sequence_space_after_it() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(7, "2026-11-01T07:07:00")), inventory(METER_CHARS)
    )
    run = drive(session, Script(racp={range_from(8): [meas(8), meas(9), racp_success()]}))
    assert run.writes == [bytes.fromhex("01040108000780")]  # within 8 .. 32775
    assert [r.sequence for r in run.readings] == [8, 9]
    assert run.ready[0].cursor == DeviceCursor(9, "2026-11-01T07:09:00")


def test_in_the_upper_half_it_asks_for_greater_or_equal_last_plus_one() -> None:
    # The half after 40000 crosses 65535: ">= 40001" asks for its part up to 65535.
    session = GlucoseSession(
        params(cursor=DeviceCursor(40000, "2026-11-01T07:07:00")), inventory(METER_CHARS)
    )
    script = Script(racp={report_from(40001): [meas(40001, 8), racp_success()]})
    run = drive(session, script)
    assert run.writes == [report_from(40001)]
    assert [r.sequence for r in run.readings] == [40001]


def test_a_refused_range_falls_back_to_greater_or_equal_then_to_all() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(2, "2026-11-01T07:02:00")), inventory(METER_CHARS)
    )
    script = Script(
        racp={
            range_from(3): [racp_code(0x04)],
            report_from(3): [racp_code(0x04)],
            ALL: [meas(1), meas(2), meas(3), meas(4), racp_success()],
        }
    )
    run = drive(session, script)
    assert run.writes == [range_from(3), report_from(3), ALL]
    assert [r.sequence for r in run.readings] == [3, 4]
    assert run.ended is not None and run.ended.stats["racp_fallback"] == 1
    assert run.ended.stats["racp_range_refused"] == 1


def test_nothing_new_is_confirmed_by_the_last_record() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(4, "2026-11-01T07:04:00")), inventory(METER_CHARS)
    )
    script = Script(racp={range_from(5): [racp_code(0x06)], LAST: [meas(4), racp_success()]})
    run = drive(session, script)
    assert run.writes == [range_from(5), LAST]
    assert run.ready == [] and run.ended is not None and run.ended.outcome is Outcome.NOTHING_NEW


def test_a_sequence_reset_below_the_cursor_fetches_everything() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(40, "2026-11-01T07:40:00")), inventory(METER_CHARS)
    )
    script = Script(
        racp={
            range_from(41): [racp_code(0x06)],
            LAST: [meas(2, minute=100), racp_success()],
            ALL: [meas(1, minute=99), meas(2, minute=100), racp_success()],
        }
    )
    run = drive(session, script)
    assert run.writes == [range_from(41), LAST, ALL]
    assert [r.sequence for r in run.readings] == [1, 2]
    assert run.ready[0].cursor == DeviceCursor(2, "2026-11-01T08:40:00")
    assert run.ended is not None and run.ended.stats["sequence_reset"] == 1


# "Report stored records within range 0..32767" (`01 04 01 0000 FF7F`): the half of the
# sequence space after a cursor at 65535.
RANGE_AFTER_65535 = bytes.fromhex("0104010000FF7F")


def test_wrap_past_65535_asks_for_the_half_after_the_cursor() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(65535, "2026-11-01T08:00:00")), inventory(METER_CHARS)
    )
    script = Script(
        racp={RANGE_AFTER_65535: [meas(0, minute=61), meas(1, minute=62), racp_success()]}
    )
    run = drive(session, script)
    assert run.writes == [RANGE_AFTER_65535]
    assert [r.sequence for r in run.readings] == [0, 1]
    assert run.ready[0].cursor == DeviceCursor(1, "2026-11-01T08:02:00")


def test_wrap_with_the_range_refused_fetches_all_and_keeps_what_follows_the_cursor() -> None:
    session = GlucoseSession(
        params(cursor=DeviceCursor(65535, "2026-11-01T08:00:00")), inventory(METER_CHARS)
    )
    records = [
        meas(65534, minute=59),
        meas(65535, minute=60),
        meas(0, minute=61),
        meas(1, minute=62),
    ]
    script = Script(racp={RANGE_AFTER_65535: [racp_code(0x04)], ALL: [*records, racp_success()]})
    run = drive(session, script)
    assert run.writes == [RANGE_AFTER_65535, ALL]
    assert [r.sequence for r in run.readings] == [0, 1]
    assert run.ready[0].cursor == DeviceCursor(1, "2026-11-01T08:02:00")


def test_a_wrapped_meter_that_drops_the_link_keeps_the_run_from_zero() -> None:
    # Fetching "all" here would start with the old records 65534, 65535 and lose the link
    # before reaching anything new, on every connection: the meter would never complete.
    session = GlucoseSession(
        params(cursor=DeviceCursor(65535, "2026-11-01T08:00:00")), inventory(METER_CHARS)
    )

    def drop(cmd: object) -> list | None:  # type: ignore[type-arg]
        if isinstance(cmd, Write):
            return [WriteDone(cmd.uuid), meas(0, 61), meas(1, 62), Disconnected("link lost")]
        return None

    run = drive(session, Script(on_command=drop))
    assert run.writes == [RANGE_AFTER_65535]
    assert [r.sequence for r in run.readings] == [0, 1]
    assert run.ready[0].cursor == DeviceCursor(1, "2026-11-01T08:02:00")


def test_a_wrap_found_by_the_last_record_asks_for_the_range() -> None:
    # Cursor 65000; ">= 65001" finds nothing; the last record, 5, lies in the half of the
    # sequence space after 65000 (up to 32232 past the wrap): a wrap, not a reset.
    session = GlucoseSession(
        params(cursor=DeviceCursor(65000, "2026-11-01T08:00:00")), inventory(METER_CHARS)
    )
    in_range = bytes.fromhex("0104010000") + (65000 + 0x8000 - 0x10000).to_bytes(2, "little")
    script = Script(
        racp={
            report_from(65001): [racp_code(0x06)],
            LAST: [meas(5, minute=66), racp_success()],
            in_range: [meas(s, minute=61 + s) for s in range(6)] + [racp_success()],
        }
    )
    run = drive(session, script)
    assert run.writes == [report_from(65001), LAST, in_range]
    assert [r.sequence for r in run.readings] == [0, 1, 2, 3, 4, 5]
    assert run.ended is not None and run.ended.stats["sequence_wrap"] == 1


def test_meter_without_context_characteristic_still_delivers() -> None:
    inv = inventory(METER_CHARS, without=[gatt.GLUCOSE_MEASUREMENT_CONTEXT])
    session = GlucoseSession(params(), inv)
    run = drive(session, Script(racp={ALL: [meas(1, context=True), meas(2), racp_success()]}))
    assert len([c for c in run.commands if isinstance(c, Subscribe)]) == 2
    assert [r.sequence for r in run.readings] == [1, 2]
    assert all("context_missing" not in r.status for r in run.readings)


def test_context_that_never_comes_is_flagged_and_a_stray_context_is_quarantined() -> None:
    session = GlucoseSession(params(), inventory(METER_CHARS))
    stray = Notified(gatt.GLUCOSE_MEASUREMENT_CONTEXT, bytes.fromhex("02090001"))
    run = drive(
        session, Script(racp={ALL: [meas(1, context=True), meas(2), stray, racp_success()]})
    )
    by_seq = {r.sequence: r for r in run.readings}
    assert "context_missing" in by_seq[1].status and "context_missing" not in by_seq[2].status
    [packet] = run.ready[0].quarantined
    assert packet.raw == bytes.fromhex("02090001") and "sequence 9" in packet.reason


def test_duplicates_are_dropped_control_solution_is_kept_and_marked() -> None:
    control = meas(
        3, type=GlucoseType.CONTROL_SOLUTION, sample_location=GlucoseSampleLocation.CONTROL_SOLUTION
    )
    session = GlucoseSession(params(), inventory(METER_CHARS))
    run = drive(session, Script(racp={ALL: [meas(1), meas(2), meas(2), control, racp_success()]}))
    assert [r.sequence for r in run.readings] == [1, 2, 3]
    assert CONTROL_SOLUTION in run.readings[2].status and run.readings[2].is_control_solution
    assert run.ended is not None and run.ended.stats["duplicates"] == 1


def test_a_malformed_record_is_quarantined_with_its_bytes_and_the_rest_arrive() -> None:
    broken = Notified(gatt.GLUCOSE_MEASUREMENT, bytes.fromhex("170200EA07"))
    session = GlucoseSession(params(), inventory(METER_CHARS))
    run = drive(session, Script(racp={ALL: [meas(1), broken, meas(3), racp_success()]}))
    assert [r.sequence for r in run.readings] == [1, 3]
    [packet] = run.ready[0].quarantined
    assert packet.uuid == gatt.GLUCOSE_MEASUREMENT and packet.raw == bytes.fromhex("170200EA07")
    assert "GlucoseMeasurement" in packet.reason


def test_an_out_of_range_value_is_quarantined_not_sent() -> None:
    huge = meas(2, concentration=SFloat.from_value(0.5, exponent=-1))  # 500 mmol/L
    session = GlucoseSession(params(), inventory(METER_CHARS))
    run = drive(session, Script(racp={ALL: [meas(1), huge, racp_success()]}))
    assert [r.sequence for r in run.readings] == [1]
    assert "glucose_mmol_l" in run.ready[0].quarantined[0].reason
    assert run.ready[0].cursor == DeviceCursor(2, "2026-11-01T07:02:00")


# Literal notifications for the partial-transfer tests (flags 0x07: time offset,
# concentration+type/location, mol/L; 0x17: the same with "context follows"), 2026-11-27 07:mm.
SEQ_8 = bytes.fromhex("070800EA070B1B070800000037C011")
SEQ_9_CTX = bytes.fromhex("170900EA070B1B070900000037C011")
CTX_9 = bytes.fromhex("02090001")  # meal, seq 9, preprandial
SEQ_10_TRUNCATED = bytes.fromhex("170A00EA07")
SEQ_11 = bytes.fromhex("070B00EA070B1B070B00000037C011")
SEQ_12_CTX = bytes.fromhex("170C00EA070B1B070C00000037C011")


def test_disconnect_mid_transfer_keeps_the_complete_run_up_to_the_first_gap() -> None:
    gm, gmc = gatt.GLUCOSE_MEASUREMENT, gatt.GLUCOSE_MEASUREMENT_CONTEXT

    def drop(cmd: object) -> list | None:  # type: ignore[type-arg]
        if isinstance(cmd, Write):
            return [
                WriteDone(cmd.uuid),
                Notified(gm, SEQ_8),
                Notified(gm, SEQ_9_CTX),
                Notified(gmc, CTX_9),
                Notified(gm, SEQ_10_TRUNCATED),  # quarantined: a gap at 10
                Notified(gm, SEQ_11),  # complete, but past the gap: fetched again
                Notified(gm, SEQ_12_CTX),  # its context never came: not complete
                Disconnected("supervision timeout"),
            ]
        return None

    cursor = DeviceCursor(7, "2026-11-27T07:07:00")
    run = drive(
        GlucoseSession(params(cursor=cursor), inventory(METER_CHARS)), Script(on_command=drop)
    )
    assert run.writes == [range_from(8)]
    [ready] = run.ready  # one transaction: readings, quarantine and cursor together
    assert [r.reading_id for r in ready.readings] == [
        reading_id_for(
            device_id=DEVICE_ID,
            kind=Kind.GLUCOSE,
            sequence=seq,
            device_time=f"2026-11-27T07:{seq:02d}:00",
        )
        for seq in (8, 9)
    ]
    assert ready.readings[1].context["meal"] == "preprandial"  # 9 went with its context
    assert all("context_missing" not in r.status for r in ready.readings)
    assert ready.cursor == DeviceCursor(9, "2026-11-27T07:09:00")
    assert [q.raw for q in ready.quarantined] == [SEQ_10_TRUNCATED]
    assert run.ended is not None and run.ended.outcome is Outcome.DISCONNECTED


def test_a_first_transfer_that_goes_silent_keeps_what_came() -> None:
    def silent(cmd: object) -> list | None:  # type: ignore[type-arg]
        if isinstance(cmd, Write):
            return [WriteDone(cmd.uuid), meas(1), meas(2), meas(3)]
        return None

    session = GlucoseSession(params(silence_timeout_s=5.0), inventory(METER_CHARS))
    run = drive(session, Script(on_command=silent))
    assert [r.sequence for r in run.readings] == [1, 2, 3]
    assert run.ready[0].cursor == DeviceCursor(3, "2026-11-01T07:03:00")
    assert run.ended is not None and run.ended.outcome is Outcome.TIMEOUT
    assert type(run.commands[-1]).__name__ == "Disconnect"


def test_procedure_not_completed_keeps_complete_records_not_one_awaiting_context() -> None:
    session = GlucoseSession(params(), inventory(METER_CHARS))
    run = drive(session, Script(racp={ALL: [meas(1), meas(2, context=True), racp_code(0x08)]}))
    assert [r.sequence for r in run.readings] == [1]
    assert run.ready[0].cursor == DeviceCursor(1, "2026-11-01T07:01:00")
    assert run.ended is not None and run.ended.outcome is Outcome.DEVICE_ERROR


def test_a_partial_fetch_of_everything_keeps_nothing_before_the_cursor_record() -> None:
    cursor = DeviceCursor(65535, "2026-11-01T07:05:00")  # wrapped, range refused: all asked
    session = GlucoseSession(params(cursor=cursor), inventory(METER_CHARS))
    script = Script(
        racp={
            RANGE_AFTER_65535: [racp_code(0x04)],
            ALL: [meas(65533, 3), meas(65534, 4), racp_code(0x08)],
        }
    )
    run = drive(session, script)
    assert run.ready == []
    assert run.ended is not None and run.ended.outcome is Outcome.DEVICE_ERROR


def test_refused_pairing_is_reported_and_nothing_else_is_tried() -> None:
    run = drive(GlucoseSession(params(), inventory(METER_CHARS)), Script(pair_ok=False))
    assert [type(c) for c in run.commands] == [Pair, type(run.commands[-1])]
    assert run.ended is not None and run.ended.outcome is Outcome.PAIRING_REFUSED


def test_a_forgotten_bond_shows_as_not_bonded() -> None:
    def refuse(cmd: object) -> list | None:  # type: ignore[type-arg]
        if isinstance(cmd, Read) and cmd.uuid == gatt.MANUFACTURER_NAME:
            return [OperationFailed(cmd.uuid, "ATT error: insufficient authentication")]
        return None

    session = GlucoseSession(params(require_bond=False), inventory(METER_CHARS))
    run = drive(session, Script(on_command=refuse))
    assert run.ended is not None and run.ended.outcome is Outcome.NOT_BONDED


def test_another_device_at_the_address_is_refused() -> None:
    session = GlucoseSession(params(expected_device_id="someone-else"), inventory(METER_CHARS))
    run = drive(session, Script())
    assert run.ended is not None and run.ended.outcome is Outcome.IDENTITY_MISMATCH
    assert not [c for c in run.commands if isinstance(c, Subscribe)]


def test_a_clock_an_hour_slow_is_set_to_local_time() -> None:
    slow = bytes.fromhex("EA070B1B0700000500" + "00")  # 07:00:00 while local is 08:00 (+0)
    script = Script(racp={ALL: [meas(1), racp_success()]})
    script.reads[gatt.CURRENT_TIME] = slow
    run = drive(GlucoseSession(params(), inventory(METER_CHARS)), script)
    [clock_write] = [
        c for c in run.commands if isinstance(c, Write) and c.uuid == gatt.CURRENT_TIME
    ]
    assert clock_write.data[:7] == bytes.fromhex("EA070B1B080000")
    assert clock_write.data[9] == 0x01  # adjust reason: manual time update
    assert (
        run.readings[0].clock_offset_s is not None
        and abs(run.readings[0].clock_offset_s + 3600) < 1
    )


def test_a_clock_that_jumped_years_ahead_keeps_raw_time_and_flags_it() -> None:
    script = Script(racp={ALL: [meas(1), racp_success()]})
    script.reads[gatt.CURRENT_TIME] = bytes.fromhex("D0070101000000060000")  # year 2000
    run = drive(GlucoseSession(params(), inventory(METER_CHARS)), script)
    [reading] = run.readings
    assert "device_time_implausible" in reading.status
    assert reading.device_time == "2026-11-01T07:01:00"
    assert reading.measured_at == reading.received_at


# Literal records of a meter whose calendar was never set (flags 0x06: concentration with
# type/location, mol/L; 5.5 mmol/L capillary blood, finger): year 0, month 0, day 0 -- legal per
# the Date Time characteristic (0 = unknown) -- at 10:20:00 and 10:25:00 (seq 1 and 2).
UNKNOWN_DATE_1 = bytes.fromhex("060100" + "0000" + "00" + "00" + "0A1400" + "37C011")
UNKNOWN_DATE_2 = bytes.fromhex("060200" + "0000" + "00" + "00" + "0A1900" + "37C011")


def test_a_record_with_an_unknown_date_is_kept_flagged_and_timed_at_receipt() -> None:
    script = Script(racp={ALL: [Notified(gatt.GLUCOSE_MEASUREMENT, UNKNOWN_DATE_1),
                                Notified(gatt.GLUCOSE_MEASUREMENT, UNKNOWN_DATE_2),
                                racp_success()]})  # fmt: skip
    run = drive(GlucoseSession(params(), inventory(METER_CHARS)), script)
    assert [r.sequence for r in run.readings] == [1, 2]
    assert run.ready[0].quarantined == ()
    first, second = run.readings
    assert first.device_time == "0000-00-00T10:20:00"  # the raw time, as the meter sent it
    assert second.device_time == "0000-00-00T10:25:00"
    assert first.reading_id == reading_id_for(
        device_id=DEVICE_ID, kind=Kind.GLUCOSE, sequence=1, device_time="0000-00-00T10:20:00"
    )
    for reading in run.readings:
        assert "device_time_unknown" in reading.status
        assert reading.measured_at == reading.received_at  # honest: when the hub got it
        assert reading.values["glucose_mmol_l"] == 5.5
    assert run.ready[0].cursor == DeviceCursor(2, "0000-00-00T10:25:00")


def test_gatt_operations_are_paced() -> None:
    run = drive(
        GlucoseSession(params(pace_s=0.5), inventory(METER_CHARS)),
        Script(racp={ALL: [meas(1), racp_success()]}),
    )
    starts = [c.not_before_s for c in run.commands if type(c).__name__ != "Disconnect"]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(starts))


def test_a_meter_without_racp_is_unsupported() -> None:
    inv = inventory(METER_CHARS, without=[gatt.RECORD_ACCESS_CONTROL_POINT])
    run = drive(GlucoseSession(params(), inv), Script())
    assert run.ended is not None and run.ended.outcome is Outcome.UNSUPPORTED


def test_five_hundred_records_arrive_in_one_batch_with_the_right_ids() -> None:
    records = [meas(s, minute=s % 1000) for s in range(1, 501)]
    run = drive(
        GlucoseSession(params(), inventory(METER_CHARS)),
        Script(racp={ALL: [*records, racp_success()]}),
    )
    assert len(run.ready) == 1 and len(run.readings) == 500
    assert len({r.reading_id for r in run.readings}) == 500
    assert run.ready[0].cursor is not None and run.ready[0].cursor.last_sequence == 500


def test_a_paired_meter_that_refuses_to_bond_has_lost_its_keys() -> None:
    session = GlucoseSession(params(expected_device_id=DEVICE_ID), inventory(METER_CHARS))
    run = drive(session, Script(pair_ok=False))
    assert run.ended is not None and run.ended.outcome is Outcome.NOT_BONDED
