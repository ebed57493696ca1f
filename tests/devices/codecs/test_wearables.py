"""Wearables and other home devices: CGM E2E-CRC, multi-record notifications, named malformed
cases for 0x2A37, 0x2A5E, 0x2A5F, 0x2A1C, 0x2A9D, 0x2AA7."""

from __future__ import annotations

import pytest

from devices.codecs import (
    CgmMeasurement,
    CgmMeasurementNotification,
    DecodeError,
    EncodeError,
    HeartRateMeasurement,
    SFloat,
    WeightMeasurement,
    crc16_mcrf4xx,
    decode,
    split_records,
)


def _x(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_crc16_mcrf4xx_check_value() -> None:
    # The catalogue check value of CRC-16/MCRF4XX over "123456789" (reveng CRC catalogue).
    assert crc16_mcrf4xx(b"123456789") == 0x6F91


@pytest.mark.parametrize(
    ("name", "uuid", "payload", "field", "offset"),
    [
        ("heart_rate_rr_flag_without_interval", 0x2A37, "10 48", "rr_intervals_1024ths", 2),
        ("heart_rate_rr_flag_u16_without_interval", 0x2A37, "11 4800", "rr_intervals_1024ths", 3),
        ("cgm_crc_mismatch", 0x2AA7, "08 00 6400 0000 21C2", "e2e_crc", 6),
        # Android-BLE-Library ContinuousGlucoseMeasurementDataCallbackTest _crcError: the
        # record carries 0x6F58, the CRC of its first 6 bytes is 0x6F59.
        ("cgm_nordic_crc_error", 0x2AA7, "08 00 0C10 0600 586F", "e2e_crc", 6),
        ("cgm_nordic_too_short", 0x2AA7, "06 E3 0C10 06", "time_offset_min", 4),
        ("cgm_nordic_trend_missing", 0x2AA7, "07 E3 0C10 0600 00", "cal_temp", 7),
        ("cgm_size_matches_no_layout", 0x2AA7, "07 00 6400 0000 00", "size", 0),
        ("cgm_size_too_small", 0x2AA7, "05 00 6400 0000", "size", 0),
        ("heart_rate_odd_rr_byte", 0x2A37, "10 48 0004 00", "$trailing", 4),
        ("heart_rate_u16_truncated", 0x2A37, "01 48", "heart_rate_bpm", 1),
        (
            "temperature_time_stamp_month_13",
            0x2A1C,
            "02 6F0100FF E807 0D 02 03 04 05",
            "time_stamp.month",
            7,
        ),
        ("weight_bmi_without_height", 0x2A9D, "08 983A F000", "height_raw", 5),
        (
            "plx_spot_check_device_status_truncated",
            0x2A5E,
            "04 6200 4800 0100",
            "device_and_sensor_status",
            5,
        ),
        ("plx_continuous_slow_truncated", 0x2A5F, "02 6200 4800 6300", "pulse_rate_slow_bpm", 7),
    ],
    ids=lambda v: v if isinstance(v, str) and "_" in v else "",
)
def test_malformed_wearable_payload(
    name: str, uuid: int, payload: str, field: str, offset: int
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(uuid, _x(payload))
    assert (caught.value.field, caught.value.offset) == (field, offset), name


def test_cgm_nordic_double_notification() -> None:
    # Android-BLE-Library ContinuousGlucoseMeasurementDataCallbackTest _double.
    records = split_records(_x("06 00 0C10 0500 06 00 0C10 0600"))
    assert [r.time_offset_min for r in records] == [5, 6]
    assert all(r.glucose_concentration_mg_dl.value == 120.0 for r in records)


def test_cgm_notification_with_two_records() -> None:
    first = CgmMeasurement(0x00, SFloat(0, 100), 0, with_e2e_crc=True)
    second = CgmMeasurement(0x02, SFloat(0, 101), 5, quality_pct=SFloat(0, 90))
    data = bytes(first) + bytes(second)
    assert split_records(data) == (first, second)
    assert decode(0x2AA7, data) == CgmMeasurementNotification((first, second))
    with pytest.raises(DecodeError) as caught:
        CgmMeasurement.from_bytes(data)  # exactly one record
    assert caught.value.field == "$trailing"
    with pytest.raises(DecodeError) as caught:
        decode(0x2AA7, data + b"\x06\x00")  # too few bytes for a third record
    assert (caught.value.field, caught.value.offset) == ("$trailing", len(data))
    with pytest.raises(DecodeError) as caught:
        split_records(data[:-1])
    assert caught.value.offset == len(bytes(first)) + 6


def test_cgm_annunciation_keeps_octets_by_name_in_wire_order() -> None:
    # Only the warning octet (flag bit 5): the one byte is the warning, not the status.
    notification = decode(0x2AA7, bytes(CgmMeasurement(0x20, SFloat(0, 100), 0, warning=0x80)))
    assert isinstance(notification, CgmMeasurementNotification)
    [record] = notification.records
    assert (record.status, record.cal_temp, record.warning) == (None, None, 0x80)
    assert record.sensor_status_annunciation == 0x80 << 16


def test_heart_rate_properties() -> None:
    value = HeartRateMeasurement.build(300, sensor_contact=False, rr_intervals_1024ths=(1024,))
    assert value.flags == 0x15 and value.sensor_contact is False
    assert value.rr_intervals_s == (1.0,)
    assert HeartRateMeasurement.from_bytes(bytes(value)) == value
    assert HeartRateMeasurement(0x00, 60).sensor_contact is None
    with pytest.raises(EncodeError):
        bytes(HeartRateMeasurement(0x10, 60, rr_intervals_1024ths=()))


def test_weight_units() -> None:
    si = WeightMeasurement(0x08, 15000, bmi_raw=240, height_raw=1714)
    assert si.weight_kg == pytest.approx(75.0)
    assert si.bmi_kg_m2 == pytest.approx(24.0)
    assert si.height_m == pytest.approx(1.714)
    imperial = WeightMeasurement(0x09, 16535, bmi_raw=240, height_raw=675)
    assert imperial.weight_kg == pytest.approx(75.0, abs=0.01)
    assert imperial.height_m == pytest.approx(1.7145)
    assert WeightMeasurement(0x00, 0xFFFF).weight_kg is None
