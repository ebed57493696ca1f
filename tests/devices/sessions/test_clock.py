"""Clock provenance: offset from one coincident reading, corrected times, when to set."""

from __future__ import annotations

from datetime import UTC, datetime

from devices.sessions import clock as clk
from devices.sessions import gatt
from devices.sessions.timecodec import decode_device_clock, encode_device_clock

GW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_offset_includes_the_device_time_zone_and_correction_removes_it() -> None:
    # A meter on China Standard Time (UTC+8), 20 s fast.
    device_now = datetime(2026, 11, 27, 16, 0, 20)
    est = clk.estimate(device_now, GW, local_utc_offset_min=480)
    assert est == clk.ClockEstimate(8 * 3600 + 20.0, measured=True)
    assert clk.drift_s(est, 480) == 20.0
    assert not clk.should_set_clock(est, 480, threshold_s=60)
    assert clk.corrected_utc(datetime(2026, 11, 27, 15, 0, 20), est) == datetime(
        2026, 11, 27, 7, 0, tzinfo=UTC
    )


def test_an_unreadable_clock_is_assumed_local_and_never_set() -> None:
    est = clk.estimate(None, GW, local_utc_offset_min=-300)
    assert est == clk.ClockEstimate(-18000.0, measured=False)
    assert not clk.should_set_clock(est, -300, threshold_s=0)


def test_plausibility_window() -> None:
    assert clk.plausible(datetime(2000, 1, 1, tzinfo=UTC), GW)
    assert not clk.plausible(datetime(1999, 12, 31, tzinfo=UTC), GW)
    assert not clk.plausible(datetime(2026, 11, 28, 8, 0, 1, tzinfo=UTC), GW)


def test_current_time_round_trip_and_date_time() -> None:
    data = encode_device_clock(gatt.CURRENT_TIME, datetime(2026, 11, 27, 16, 0, 0, 500000))
    assert data == bytes.fromhex("EA070B1B100000058001")
    assert decode_device_clock(gatt.CURRENT_TIME, data) == datetime(2026, 11, 27, 16, 0)
    assert encode_device_clock(gatt.DATE_TIME, datetime(2026, 1, 2, 3, 4, 5)) == bytes.fromhex(
        "EA070102030405"
    )
    assert decode_device_clock(gatt.DATE_TIME, bytes(7)) is None
