"""The airtime model: packets placed in connection events (pure), and a realistic air that still
delivers every record in order with the model's ATT MTU."""

from __future__ import annotations

import pytest
from bleak import BleakClient

from firmware_sims.air import VirtualAir
from firmware_sims.errors import FirmwareSimsError
from firmware_sims.radio_timing import METER_TIMING, ConnectionEvents, LinkTiming
from tests.firmware_sims.test_glucose_meter import (
    ADDRESS,
    RACP,
    Transfer,
    expected_bytes,
    make_meter,
    subscribe_all,
)


def test_packets_fill_an_event_then_wait_for_the_next_one() -> None:
    timing = LinkTiming(connection_interval_ms=50.0, packets_per_event=2)
    events = ConnectionEvents(timing, anchor_s=10.0)
    airtime = timing.packet_airtime_s
    due = [events.schedule(10.0) for _ in range(5)]
    assert due == pytest.approx(
        [10.0 + airtime, 10.0 + 2 * airtime, 10.05 + airtime, 10.05 + 2 * airtime, 10.1 + airtime]
    )
    # a packet sent while idle goes in the first event at or after it
    assert events.schedule(10.26) == pytest.approx(10.3 + airtime)


def test_airtime_and_throughput_follow_the_parameters() -> None:
    # 27-octet payload + 10 octets around it at 1 us/bit, 2 x 150 us IFS, an 80 us empty PDU
    assert METER_TIMING.packet_airtime_s == pytest.approx((37 * 8 + 300 + 80) / 1e6)
    # a 17-octet Glucose Measurement: ATT 20 + L2CAP 4 = 24 octets, one packet each
    assert METER_TIMING.records_per_second(17) == pytest.approx(4 * 1000 / 45)
    fast = LinkTiming(connection_interval_ms=7.5, packets_per_event=6, att_mtu=247, data_length=251)
    assert fast.records_per_second(17) == pytest.approx(800)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connection_interval_ms": 7.0},
        {"connection_interval_ms": 31.0},  # not a multiple of 1.25 ms
        {"packets_per_event": 0},
        {"att_mtu": 22},
        {"data_length": 252},
    ],
)
def test_impossible_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(FirmwareSimsError):
        LinkTiming(**kwargs)  # type: ignore[arg-type]


async def test_a_realistic_air_delivers_every_record_in_order_at_the_models_mtu() -> None:
    async with VirtualAir(supervision_timeout_s=2.0, timing="realistic") as air:
        meter = make_meter(air)
        for value in range(90, 130):
            meter.take_reading(value)
        await meter.power_on()
        _, client_cls = air.backends()
        transfer = Transfer()
        async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
            assert client.mtu_size == METER_TIMING.att_mtu
            await subscribe_all(client, transfer)
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
            assert await transfer.racp.get() == b"\x06\x00\x01\x01"
            assert await client.read_gatt_char("2a24") == meter.identity.model.encode()
        assert transfer.received == expected_bytes(meter)
