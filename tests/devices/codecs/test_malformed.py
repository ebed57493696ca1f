"""Malformed payloads, each named by the rule it breaks, and the quirk profiles."""

from __future__ import annotations

from datetime import datetime

import pytest

from devices.codecs import (
    BloodPressureMeasurement,
    CurrentTime,
    DateTime,
    DecodeError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Meal,
    RecordAccessControlPoint,
    SFloat,
    UnknownProfileError,
    decode,
    uuid16,
)
from devices.codecs.date_time import device_time_text
from devices.errors import DevicesError

GLUCOSE_HEAD = "00 0100"  # flags 0, sequence 1


def _x(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(
    ("name", "uuid", "payload", "field", "offset"),
    [
        (
            "month_13_is_impossible",
            0x2A18,
            GLUCOSE_HEAD + "E707 0D 01 00 00 00",
            "base_time.month",
            5,
        ),
        (
            "february_31_is_impossible",
            0x2A18,
            GLUCOSE_HEAD + "E807 02 1F 00 00 00",
            "base_time.day",
            6,
        ),
        (
            "hour_24_is_impossible",
            0x2A18,
            GLUCOSE_HEAD + "E807 02 01 18 00 00",
            "base_time.hours",
            7,
        ),
        ("year_before_1582", 0x2A18, GLUCOSE_HEAD + "E803 02 01 00 00 00", "base_time.year", 3),
        (
            "partly_unknown_racp_time_filter",
            0x2A52,
            "01 03 02 0000 02 01 00 00 00",
            "filter_value",
            3,
        ),
        (
            "bpm_partly_unknown_time_stamp_february_30",
            0x2A35,
            "02 7800 5000 5A00 0000 02 1E 00 00 00",
            "time_stamp.day",
            10,
        ),
        (
            "current_time_partly_unknown",
            0x2A2B,
            "0000 02 1D 0D 2D 1E 04 80 02",
            "date_time",
            0,
        ),
        ("racp_response_with_operator", 0x2A52, "06 01 01 01", "operator", 1),
        ("racp_count_response_with_operator", 0x2A52, "05 01 0100", "operator", 1),
        ("racp_response_code_missing", 0x2A52, "06 00 01", "response_code", 3),
        ("racp_response_code_too_long", 0x2A52, "06 00 01 01 00", "$trailing", 4),
        ("racp_count_four_bytes_nordic_lenient", 0x2A52, "05 00 0100 0000", "$trailing", 4),
        ("racp_report_all_with_operand", 0x2A52, "01 01 00", "$trailing", 2),
        ("racp_filter_without_type", 0x2A52, "01 03", "filter_type", 2),
        ("racp_range_without_max", 0x2A52, "01 04 01 0100", "filter_max", 5),
        ("racp_unknown_time_filter", 0x2A52, "01 03 02 0000 00 00 00 00 00", "filter_value", 3),
        ("battery_above_100", 0x2A19, "65", "level_pct", 0),
        ("dis_string_not_utf8", 0x2A29, "41 FF 42", "text", 1),
        (
            "current_time_nine_bytes_exact_time_256",
            0x2A2B,
            "E807 02 1D 0D 2D 1E 04 80",
            "adjust_reason",
            9,
        ),
        (
            "system_id_seven_bytes",
            0x2A23,
            "01020304 05A1B2",
            "organizationally_unique_identifier",
            5,
        ),
        ("feature_three_bytes", 0x2A51, "FF0700", "$trailing", 2),
        ("empty_payload", 0x2A35, "", "flags", 0),
    ],
    ids=lambda v: v if isinstance(v, str) and "_" in v else "",
)
def test_malformed_payload_names_field_and_offset(
    name: str, uuid: int, payload: str, field: str, offset: int
) -> None:
    data = _x(payload)
    with pytest.raises(DecodeError) as caught:
        decode(uuid, data)
    error = caught.value
    assert (error.field, error.offset, error.hex) == (field, offset, data.hex()), name
    assert isinstance(error, ValueError)
    assert isinstance(error, DevicesError)
    assert error.characteristic in str(error)


def test_sfloat_keeps_both_encodings_of_the_same_value() -> None:
    a, b = SFloat.from_raw(0xC037), SFloat.from_raw(0xB226)
    assert a.value == pytest.approx(b.value) == pytest.approx(0.0055)
    assert (bytes(a), bytes(b)) == (b"\x37\xc0", b"\x26\xb2")
    assert a != b


def test_sfloat_exponent_is_signed() -> None:
    # obniz UA651BLE doc example (docs/device-profiles.md quirk 26): B0 F0 is 17.6 kPa, not 176e15.
    assert SFloat.from_raw(0xF0B0).value == pytest.approx(17.6)


def test_glucose_unknown_profile_is_a_lookup_error() -> None:
    with pytest.raises(UnknownProfileError) as caught:
        decode(0x2A18, _x("00 0100 E707 0C 1F 17 3B 3B"), profile="no-such-meter")
    assert caught.value.profile == "no-such-meter"
    assert "isens" in caught.value.known


def test_isens_repairs_month_13_and_gives_back_the_device_bytes() -> None:
    data = _x("03 0900 E807 0D 02 08 00 00 1E00 37C0 11")  # mg/dL kg/L? flags 3: offset+conc
    record = decode(0x2A18, data, profile="isens")
    assert isinstance(record, GlucoseMeasurement)
    assert record.base_time == datetime(2024, 1, 2, 8, 0, 0)
    assert record.base_time_month_13 and record.profile == "isens"
    assert record.user_facing_time == datetime(2024, 1, 2, 8, 30, 0)
    assert bytes(record) == data


def test_isens_meal_6_marks_ketone_and_strict_keeps_it_as_an_rfu_int() -> None:
    data = _x("02 0900 06")
    strict = decode(0x2A34, data)
    quirk = decode(0x2A34, data, profile="isens")
    assert isinstance(strict, GlucoseMeasurementContext)
    assert isinstance(quirk, GlucoseMeasurementContext)
    assert strict.meal == 6 and not isinstance(strict.meal, Meal) and not strict.is_ketone
    assert quirk.is_ketone
    assert bytes(quirk) == bytes(strict) == data


def test_beurer_big_endian_pulse_status_and_unflagged_user_id() -> None:
    # Flags 0x56 (time stamp, pulse, status, RFU bit 6); pulse 72 as 00 48; user 1 unflagged;
    # status 0x0004 (irregular pulse) as 00 04 (docs/device-profiles.md quirk 23).
    data = _x("56 7800 5000 5A00 E807 02 03 04 05 06 0048 01 0004")
    with pytest.raises(DecodeError) as caught:
        decode(0x2A35, data)
    assert caught.value.field == "$trailing"
    reading = decode(0x2A35, data, profile="beurer-bm")
    assert isinstance(reading, BloodPressureMeasurement)
    assert reading.pulse_rate is not None and reading.pulse_rate.value == 72.0
    assert reading.user_id == 1 and reading.measurement_status == 0x0004
    assert reading.unit == "mmHg" and reading.flags == 0x56
    assert bytes(reading) == data


def test_strict_decoder_never_guesses_beurer() -> None:
    # Without the user id byte the Beurer payload is strictly valid, and reads the swapped
    # pulse as the spec says (0x4800: exponent 4, mantissa -2048), never as 72.
    data = _x("46 7800 5000 5A00 E807 02 03 04 05 06 0048")
    reading = decode(0x2A35, data)
    assert isinstance(reading, BloodPressureMeasurement)
    assert reading.pulse_rate == SFloat.from_raw(0x4800)
    assert reading.pulse_rate.value == -2048 * 10**4


def test_a_partly_unknown_glucose_base_time_is_legal_and_kept_as_sent() -> None:
    # Date Time: 0 means "unknown" for year, month and day; a meter whose calendar was never
    # set stores records like this, and they are real measurements.
    data = _x(GLUCOSE_HEAD + "0000 02 01 0A 14 00")
    value = decode(0x2A18, data)
    assert isinstance(value, GlucoseMeasurement)
    assert value.base_time == DateTime(0, 2, 1, 10, 20, 0)
    assert value.user_facing_time is None
    assert bytes(value) == data
    assert device_time_text(value.base_time) == "0000-02-01T10:20:00"
    assert device_time_text(datetime(2026, 2, 1, 10, 20)) == "2026-02-01T10:20:00"


def test_current_time_zero_date_means_unknown() -> None:
    value = decode(0x2A2B, bytes(10))
    assert value == CurrentTime(None, 0, 0, 0)


@pytest.mark.parametrize(
    ("uuid", "number"),
    [
        (0x2A18, 0x2A18),
        ("00002a18-0000-1000-8000-00805f9b34fb", 0x2A18),
        ("00002A52-0000-1000-8000-00805F9B34FB", 0x2A52),
        ("0x2A35", 0x2A35),
        ("2a19", 0x2A19),
    ],
)
def test_uuid_forms(uuid: int | str, number: int) -> None:
    assert uuid16(uuid) == number


@pytest.mark.parametrize(
    "uuid", ["c4dea3bc-5a9d-11e9-8647-d663bd873d93", "", "0x12345", -1, 0x10000, "zz"]
)
def test_bad_or_unknown_uuid_is_a_decode_error(uuid: int | str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(uuid, b"\x00")
    assert caught.value.field == "$uuid"


def test_no_codec_for_an_assigned_number_is_a_decode_error() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(0x2A00, b"name")
    assert (caught.value.characteristic, caught.value.field) == ("0x2A00", "$uuid")


def test_racp_builders_write_what_real_meters_expect() -> None:
    rac = RecordAccessControlPoint
    assert bytes(rac.report_all()) == _x("0101")
    assert bytes(rac.report_first()) == _x("0105")
    assert bytes(rac.report_last()) == _x("0106")
    assert bytes(rac.report(at_least=0x1234)) == _x("0103013412")
    assert bytes(rac.report(at_most=5)) == _x("0102010500")
    assert bytes(rac.report(at_least=1, at_most=9)) == _x("010401 0100 0900")
    assert bytes(rac.report(at_least=datetime(2024, 1, 1))) == _x("010302 E807 0101 000000")
    assert bytes(rac.count_all()) == _x("0401")
    assert bytes(rac.count(at_least=7)) == _x("0403010700")
    assert bytes(rac.delete_all()) == _x("0201")
    assert bytes(rac.delete(at_most=3)) == _x("0202010300")
    assert bytes(rac.abort()) == _x("0300")
    assert bytes(rac.response(1, 1)) == _x("06000101")
    assert bytes(rac.number_of_records_response(2)) == _x("05000200")
    assert rac.report(at_least=42).filter_value == 42
    assert rac.response(3, 7).is_response


def test_an_unknown_profile_fails_even_where_no_quirk_applies() -> None:
    with pytest.raises(UnknownProfileError):
        decode(0x2A19, b"\x50", profile="beurer")


def test_user_facing_time_is_unknown_on_offset_overrun_or_underrun() -> None:
    base = datetime(2024, 1, 1, 12, 0)
    assert GlucoseMeasurement(0x01, 1, base, -0x8000).user_facing_time is None
    assert GlucoseMeasurement(0x01, 1, base, 0x7FFF).user_facing_time is None
    assert GlucoseMeasurement(0x01, 1, base, 0x7FFE).user_facing_time == datetime(
        2024, 1, 24, 6, 6
    )  # + 22 d 18 h 6 min
    assert GlucoseMeasurement(0x00, 1, base).user_facing_time == base
