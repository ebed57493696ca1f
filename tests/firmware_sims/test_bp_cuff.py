"""Simulated cuffs read by plain bleak code: stored readings by indication on connect (send-all
and send-unsent), ICP during inflation, several users, status flags, model quirks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from devices.codecs import BloodPressureMeasurement, DecodeError, IntermediateCuffPressure
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.faults import Faults
from firmware_sims.models import get_model

BPM = "00002a35-0000-1000-8000-00805f9b34fb"
ICP = "00002a36-0000-1000-8000-00805f9b34fb"
ADDRESS = "F2:00:00:00:00:01"
T0 = datetime(2026, 3, 1, 6, 45, tzinfo=UTC)


def make_cuff(air: VirtualAir, model: str, **kwargs: object) -> BloodPressureCuff:
    return BloodPressureCuff(
        air,
        get_model(model),
        serial="20260301A7",
        address=ADDRESS,
        now=lambda: T0,
        **kwargs,  # type: ignore[arg-type]
    )


def store_three(cuff: BloodPressureCuff) -> list[bytes]:
    stamps = [datetime(2026, 2, 28, h, 0) for h in (7, 8, 21)]
    readings = [
        cuff.encode(
            systolic_mmhg=128,
            diastolic_mmhg=82,
            pulse_per_min=64,
            user_id=1,
            body_movement=False,
            irregular_pulse=False,
            time_stamp=stamps[0],
        ),
        cuff.encode(
            systolic_mmhg=141,
            diastolic_mmhg=91,
            pulse_per_min=88,
            user_id=2,
            body_movement=True,
            irregular_pulse=False,
            time_stamp=stamps[1],
        ),
        cuff.encode(
            systolic_mmhg=135,
            diastolic_mmhg=85,
            pulse_per_min=71,
            user_id=1,
            body_movement=False,
            irregular_pulse=True,
            time_stamp=stamps[2],
        ),
    ]
    for reading in readings:
        cuff.store(reading)
    return [bytes(r) for r in readings]


class Inbox:
    def __init__(self) -> None:
        self.bpm: asyncio.Queue[bytes] = asyncio.Queue()
        self.icp: list[bytes] = []

    def on_data(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        if char.uuid == BPM:
            self.bpm.put_nowait(bytes(data))
        else:
            self.icp.append(bytes(data))

    def drain(self) -> list[bytes]:
        out = []
        while not self.bpm.empty():
            out.append(self.bpm.get_nowait())
        return out


async def test_send_unsent_cuff_indicates_each_stored_reading_once(air: VirtualAir) -> None:
    cuff = make_cuff(air, "omron-like")
    expected = store_three(cuff)
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await client.start_notify(BPM, inbox.on_data)
        assert [await inbox.bpm.get() for _ in expected] == expected
    decoded = [BloodPressureMeasurement.from_bytes(b) for b in expected]
    assert [d.user_id for d in decoded] == [1, 2, 1]
    assert decoded[1].measurement_status == 0b001  # body movement
    assert decoded[2].measurement_status == 0b100  # irregular pulse

    cuff.transfer_done.clear()
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        await client.start_notify(BPM, inbox.on_data)
        await cuff.transfer_done.wait()
    assert inbox.drain() == []  # already delivered: an Omron-like cuff does not send it again


async def test_send_all_cuff_dumps_its_memory_on_every_connection_with_beurer_bytes(
    air: VirtualAir,
) -> None:
    cuff = make_cuff(air, "beurer-like")
    expected = store_three(cuff)
    await cuff.power_on()
    _, client_cls = air.backends()
    for _ in range(2):
        inbox = Inbox()
        async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
            await client.start_notify(BPM, inbox.on_data)
            assert [await inbox.bpm.get() for _ in expected] == expected
    first = expected[0]
    assert first[0] & 0x40 and not first[0] & 0x08  # RFU bit 6 set, User ID flag clear
    quirky = BloodPressureMeasurement.from_bytes(first, profile="beurer-bm")
    assert quirky.pulse_rate is not None and quirky.pulse_rate.value == 64
    assert quirky.user_id == 1
    with pytest.raises(DecodeError):
        BloodPressureMeasurement.from_bytes(first)  # strict: a byte left over


async def test_live_cycle_notifies_cuff_pressure_then_indicates_the_reading(
    air: VirtualAir,
) -> None:
    cuff = make_cuff(air, "omron-like")
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await client.start_notify(ICP, inbox.on_data)
        await client.start_notify(BPM, inbox.on_data)
        await cuff.transfer_done.wait()  # empty memory: nothing to send on connect
        reading = await cuff.measure(152, 97, 77, user_id=2, irregular_pulse=True)
        assert await inbox.bpm.get() == bytes(reading.measurement)
    pressures = [IntermediateCuffPressure.from_bytes(b).cuff_pressure.value for b in inbox.icp]
    assert pressures == [float(p) for p in range(0, 183, 20)]
    decoded = BloodPressureMeasurement.from_bytes(bytes(reading.measurement))
    assert decoded.systolic.value == 152
    assert decoded.time_stamp == datetime(2026, 3, 1, 6, 45)
    assert reading.delivered


async def test_a_host_gone_during_the_cycle_leaves_the_reading_unsent(air: VirtualAir) -> None:
    # The host hangs up while the cuff inflates: the reading must not count as delivered (it
    # used to: Bumble's indicate returns quietly when nobody is subscribed, so the reading was
    # never sent again), and it goes with the next transfer. (An indication that got out before
    # the link went, unconfirmed, is sent again too: at least once.)
    cuff = make_cuff(air, "omron-like")
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    client = BleakClient(ADDRESS, backend=client_cls, pair=True)
    await client.connect()
    hung_up: list[asyncio.Task[None]] = []

    def hang_up_on_pressure(char: BleakGATTCharacteristic, data: bytearray) -> None:
        if not hung_up:
            hung_up.append(asyncio.create_task(client.disconnect()))

    await client.start_notify(ICP, hang_up_on_pressure)
    await client.start_notify(BPM, inbox.on_data)
    await cuff.transfer_done.wait()
    reading = await cuff.measure(150, 95, 80)
    await hung_up[0]
    assert not reading.delivered
    inbox.drain()
    cuff.transfer_done.clear()
    async with BleakClient(ADDRESS, backend=client_cls) as again:
        await again.start_notify(BPM, inbox.on_data)
        assert await inbox.bpm.get() == bytes(reading.measurement)
        await cuff.transfer_done.wait()
    assert reading.delivered


async def test_disconnect_mid_transfer_then_the_rest_on_reconnect(air: VirtualAir) -> None:
    cuff = make_cuff(air, "omron-like", faults=Faults(disconnect_after_records=1))
    expected = store_three(cuff)
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    dropped = asyncio.Event()
    client = BleakClient(
        ADDRESS, backend=client_cls, pair=True, disconnected_callback=lambda _c: dropped.set()
    )
    await client.connect()
    await client.start_notify(BPM, inbox.on_data)
    await dropped.wait()
    assert inbox.drain() == expected[:1]

    cuff.faults = Faults()
    async with BleakClient(ADDRESS, backend=client_cls) as again:
        await again.start_notify(BPM, inbox.on_data)
        assert [await inbox.bpm.get() for _ in expected[1:]] == expected[1:]


async def test_bonded_host_only_cuff_refuses_another_host_and_hangs_up_after_sending(
    air: VirtualAir,
) -> None:
    cuff = make_cuff(air, "and-like", passkey=24680)
    one = cuff.encode(
        systolic_mmhg=118,
        diastolic_mmhg=76,
        pulse_per_min=60,
        user_id=1,
        body_movement=False,
        irregular_pulse=False,
        time_stamp=datetime(2026, 2, 28, 7, 0),
    )
    cuff.store(one)
    expected = [bytes(one)]
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    hung_up = asyncio.Event()
    async with BleakClient(
        ADDRESS, backend=client_cls, disconnected_callback=lambda _c: hung_up.set()
    ) as client:
        await client.pair(passkey=24680)
        await client.start_notify(BPM, inbox.on_data)
        await hung_up.wait()  # A&D-like: disconnects by itself once the data is sent
    assert inbox.drain() == expected

    # a second hub on the same air: the cuff only talks to the host it is bonded to
    from bumble_bleak.backend import radio_backends
    from bumble_bleak.central import CentralRadio

    other_radio = await CentralRadio.start(air.new_device("other-hub", "C0:99:99:99:99:99"))

    async def provide() -> CentralRadio:
        return other_radio

    _, other_cls = radio_backends(provide)
    refused = asyncio.Event()
    other = BleakClient(ADDRESS, backend=other_cls, disconnected_callback=lambda _c: refused.set())
    try:
        await other.connect()
    except Exception:  # the cuff may hang up before discovery completes
        refused.set()
    await refused.wait()
    assert not other.is_connected


async def test_malformed_and_missing_indications_are_visible(air: VirtualAir) -> None:
    cuff = make_cuff(air, "omron-like", faults=Faults(malformed_every=2))
    expected = store_three(cuff)
    await cuff.power_on()
    _, client_cls = air.backends()
    inbox = Inbox()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await client.start_notify(BPM, inbox.on_data)
        got = [await inbox.bpm.get() for _ in expected]
    assert got[0] == expected[0] and got[2] == expected[2]
    assert got[1] == expected[1][:-1]
    with pytest.raises(DecodeError):
        BloodPressureMeasurement.from_bytes(got[1])
