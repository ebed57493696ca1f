"""Each fault, observed through plain bleak the way a real stack shows it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from devices.codecs import DecodeError, GlucoseMeasurement
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from firmware_sims.glucose_meter import GlucoseMeter
from tests.firmware_sims.test_glucose_meter import (
    ADDRESS,
    MEASUREMENT,
    RACP,
    T0,
    FakeTime,
    Transfer,
    make_meter,
    subscribe_all,
)


def sequences(transfer: Transfer) -> list[int]:
    return [
        GlucoseMeasurement.from_bytes(b).sequence_number
        for uuid, b in transfer.received
        if uuid == MEASUREMENT
    ]


async def fetch_all(air: VirtualAir, meter: GlucoseMeter) -> Transfer:
    """Bond, subscribe, report all, wait for the RACP response."""
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    return transfer


def take(meter: GlucoseMeter, count: int, clock: FakeTime | None = None) -> None:
    for i in range(count):
        if clock is not None:
            clock.now = T0 + timedelta(hours=i)
        meter.take_reading(100 + i)


async def test_disconnect_mid_transfer_shows_as_a_disconnect_without_response(
    air: VirtualAir,
) -> None:
    meter = make_meter(air, faults=Faults(disconnect_after_records=2))
    take(meter, 5)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    dropped = asyncio.Event()
    client = BleakClient(
        ADDRESS, backend=client_cls, pair=True, disconnected_callback=lambda _c: dropped.set()
    )
    await client.connect()
    await subscribe_all(client, transfer)
    await client.write_gatt_char(RACP, b"\x01\x01", response=True)
    await dropped.wait()
    assert sequences(transfer) == [0, 1]
    assert transfer.racp.empty()


async def test_power_off_mid_session_is_seen_after_the_supervision_timeout(
    air: VirtualAir,
) -> None:
    meter = make_meter(air, faults=Faults(power_off_after_records=1))
    take(meter, 3)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    dropped = asyncio.Event()
    client = BleakClient(
        ADDRESS, backend=client_cls, pair=True, disconnected_callback=lambda _c: dropped.set()
    )
    await client.connect()
    await subscribe_all(client, transfer)
    await client.write_gatt_char(RACP, b"\x01\x01", response=True)
    await dropped.wait()
    assert sequences(transfer) == [0]
    assert transfer.racp.empty()
    assert not meter.powered


async def test_refused_pairing_is_a_bleak_error_and_data_stays_locked(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(refuse_pairing=True))
    take(meter, 1)
    await meter.power_on()
    _, client_cls = air.backends()
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        with pytest.raises(BleakError):
            await client.pair()
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)


async def test_forgotten_bond_locks_the_data_until_pairing_again(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(forget_bond=True))
    take(meter, 2)
    await meter.power_on()
    _, client_cls = air.backends()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True):
        pass
    assert await meter.bonded_hosts() == ["C0:11:22:33:44:55"]
    await meter.power_off()  # battery change: this model loses its keys
    await meter.power_on()
    assert await meter.bonded_hosts() == []
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError) as locked:
            await client.start_notify(MEASUREMENT, transfer.on_data)
        assert locked.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
        await client.pair()  # re-bond
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    assert sequences(transfer) == [0, 1]


async def test_sequence_reset_after_a_battery_change(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(sequence_reset_after=3))
    take(meter, 5)
    assert sequences(await fetch_all(air, meter)) == [0, 1, 2, 0, 1]


async def test_sequence_wraps_at_65535_and_a_ge_filter_then_misses_newer_records(
    air: VirtualAir,
) -> None:
    meter = make_meter(air, faults=Faults(sequence_start=65534))
    take(meter, 4)
    assert sequences(await fetch_all(air, meter)) == [65534, 65535, 0, 1]
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x03\x01\xff\xff", response=True)  # >= 65535
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    assert sequences(transfer) == [65535]


async def test_duplicate_and_out_of_order_records(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(duplicate_every=2))
    take(meter, 4)
    transfer = await fetch_all(air, meter)
    assert sequences(transfer) == [0, 1, 1, 2, 3, 3]
    assert transfer.received[1] == transfer.received[2]  # byte-identical duplicate


async def test_out_of_order_records_arrive_out_of_order(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(out_of_order_every=3))
    take(meter, 4)
    assert sequences(await fetch_all(air, meter)) == [0, 2, 1, 3]


async def test_clock_jump_shows_in_the_base_times(air: VirtualAir) -> None:
    clock = FakeTime()
    meter = make_meter(air, now=clock, faults=Faults(clock_jump_after=2, clock_jump_min=61))
    take(meter, 4, clock)
    transfer = await fetch_all(air, meter)
    times = [GlucoseMeasurement.from_bytes(b).base_time for _, b in transfer.received]
    assert times == [
        datetime(2026, 3, 1, 7, 30),
        datetime(2026, 3, 1, 8, 30),
        datetime(2026, 3, 1, 10, 31),  # 61 minutes ahead from the third reading on
        datetime(2026, 3, 1, 11, 31),
    ]


async def test_malformed_notifications_fail_to_decode(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(malformed_every=3))
    take(meter, 4)
    transfer = await fetch_all(air, meter)
    payloads = [b for _, b in transfer.received]
    assert payloads[2] == bytes(meter.racp.records[2].measurement)[:-1]
    with pytest.raises(DecodeError):
        GlucoseMeasurement.from_bytes(payloads[2])
    assert [GlucoseMeasurement.from_bytes(p).sequence_number for p in payloads[:2]] == [0, 1]


async def test_slow_responses_miss_a_short_deadline_but_complete(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(slow_response_s=0.3))
    take(meter, 2)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # a gateway's too-short deadline
                await transfer.racp.get()
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    assert sequences(transfer) == [0, 1]


async def test_missing_final_indication(air: VirtualAir) -> None:
    meter = make_meter(air, faults=Faults(skip_final_response=True))
    take(meter, 2)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert meter.procedure is not None
        await meter.procedure  # the firmware finished its procedure ...
        await client.read_gatt_char("2a19")  # ... and everything it sent has arrived
    assert sequences(transfer) == [0, 1]
    assert transfer.racp.empty()  # ... without the RACP response


async def test_battery_change_resets_the_clock_until_a_host_sets_it(air: VirtualAir) -> None:
    clock = FakeTime()
    meter = make_meter(air, now=clock)
    meter.take_reading(100)
    meter.battery_change()
    clock.now = T0 + timedelta(minutes=5)
    meter.take_reading(101)
    transfer = await fetch_all(air, meter)
    times = [GlucoseMeasurement.from_bytes(b).base_time for _, b in transfer.received]
    assert times == [datetime(2026, 3, 1, 7, 30), datetime(2000, 1, 1, 0, 5)]
