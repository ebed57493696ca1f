"""A simulated glucose meter read by plain bleak code: bond, subscribe, RACP, every record
byte-identical to what the firmware encoded; RACP errors; CTS; security before data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode

from devices.codecs import CurrentTime, GlucoseMeasurement, Meal, RecordAccessControlPoint
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.models import get_model

MEASUREMENT = "00002a18-0000-1000-8000-00805f9b34fb"
CONTEXT = "00002a34-0000-1000-8000-00805f9b34fb"
RACP = "00002a52-0000-1000-8000-00805f9b34fb"
CURRENT_TIME = "00002a2b-0000-1000-8000-00805f9b34fb"
T0 = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
ADDRESS = "F1:00:00:00:00:01"


class FakeTime:
    """The meter's notion of real time, advanced by the test (time is passed in)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Transfer:
    """What a gateway-like bleak client received: (characteristic uuid, bytes) in order."""

    received: list[tuple[str, bytes]] = field(default_factory=list)
    racp: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    def on_data(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        if char.uuid == RACP:
            self.racp.put_nowait(bytes(data))
        else:
            self.received.append((char.uuid, bytes(data)))


async def subscribe_all(client: BleakClient, transfer: Transfer) -> None:
    for uuid in (MEASUREMENT, CONTEXT, RACP):
        await client.start_notify(uuid, transfer.on_data)


def make_meter(air: VirtualAir, model: str = "contour-like", **kwargs: object) -> GlucoseMeter:
    return GlucoseMeter(
        air,
        get_model(model),
        serial="C7830H5012345",
        address=ADDRESS,
        utc_offset_min=60,
        **kwargs,  # type: ignore[arg-type]
    )


def expected_bytes(meter: GlucoseMeter) -> list[tuple[str, bytes]]:
    out = []
    for record in meter.racp.records:
        out.append((MEASUREMENT, bytes(record.measurement)))
        if record.context is not None:
            out.append((CONTEXT, bytes(record.context)))
    return out


async def test_every_stored_record_arrives_byte_identical(air: VirtualAir) -> None:
    clock = FakeTime()
    meter = make_meter(air, now=clock)
    for i, value in enumerate((92, 143, 61, 250, 118)):
        clock.now = T0 + timedelta(hours=5 * i)
        meter.take_reading(value, meal=Meal.PREPRANDIAL if i % 2 else None)
    meter.take_reading(100, control_solution=True)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()

    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(
            RACP, bytes(RecordAccessControlPoint.count_all()), response=True
        )
        assert await transfer.racp.get() == b"\x05\x00\x06\x00"
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"

    assert transfer.received == expected_bytes(meter)
    assert len(transfer.received) == 8  # 6 measurements + 2 contexts, each after its record
    first = GlucoseMeasurement.from_bytes(transfer.received[0][1])
    # Contour-like: Base Time is UTC, Time Offset is the local offset
    assert first.base_time == datetime(2026, 3, 1, 7, 30)
    assert first.time_offset_min == 60
    assert first.concentration_mg_dl == pytest.approx(92)


@pytest.mark.parametrize(
    ("request_bytes", "expected_sequences", "response"),
    [
        (b"\x01\x03\x01\x02\x00", [2, 3, 4], b"\x06\x00\x01\x01"),  # >= 2 (inclusive)
        (b"\x01\x02\x01\x01\x00", [0, 1], b"\x06\x00\x01\x01"),  # <= 1
        (b"\x01\x04\x01\x01\x00\x03\x00", [1, 2, 3], b"\x06\x00\x01\x01"),  # range
        (b"\x01\x05", [0], b"\x06\x00\x01\x01"),  # first
        (b"\x01\x06", [4], b"\x06\x00\x01\x01"),  # last
        (b"\x01\x03\x01\x09\x00", [], b"\x06\x00\x01\x06"),  # no records found
        (b"\x01\x04\x01\x03\x00\x01\x00", [], b"\x06\x00\x01\x05"),  # min > max: invalid operand
        (b"\x01\x00", [], b"\x06\x00\x01\x03"),  # Null operator: invalid operator
        (b"\x01\x07", [], b"\x06\x00\x01\x03"),  # RFU operator
        (b"\x01\x03\x07\x01\x00", [], b"\x06\x00\x01\x09"),  # unknown filter type
        (b"\x01\x03\x01\x02", [], b"\x06\x00\x01\x05"),  # truncated operand
        (b"\x09\x01", [], b"\x06\x00\x09\x02"),  # RFU op code
        (b"\x03\x01", [], b"\x06\x00\x03\x03"),  # abort needs operator Null
    ],
)
async def test_racp_filters_and_error_responses(
    air: VirtualAir, request_bytes: bytes, expected_sequences: list[int], response: bytes
) -> None:
    meter = make_meter(air)
    for value in (90, 100, 110, 120, 130):
        meter.take_reading(value)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, request_bytes, response=True)
        assert await transfer.racp.get() == response
    got = [GlucoseMeasurement.from_bytes(b).sequence_number for _, b in transfer.received]
    assert got == expected_sequences


async def test_user_facing_time_filter_and_delete_and_count(air: VirtualAir) -> None:
    clock = FakeTime()
    meter = make_meter(air, now=clock)
    for hour in range(4):
        clock.now = T0 + timedelta(hours=hour)
        meter.take_reading(100 + hour)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        # user-facing time = base (UTC) + 60 min: 09:30 local is the second record
        since = datetime(2026, 3, 1, 9, 30)
        await client.write_gatt_char(
            RACP, bytes(RecordAccessControlPoint.report(at_least=since)), response=True
        )
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
        await client.write_gatt_char(
            RACP, bytes(RecordAccessControlPoint.delete(at_most=1)), response=True
        )
        assert await transfer.racp.get() == b"\x06\x00\x02\x01"
        await client.write_gatt_char(
            RACP, bytes(RecordAccessControlPoint.count_all()), response=True
        )
        assert await transfer.racp.get() == b"\x05\x00\x02\x00"
    got = [GlucoseMeasurement.from_bytes(b).sequence_number for _, b in transfer.received]
    assert got == [1, 2, 3]


async def test_time_filter_unsupported_model_says_operand_not_supported(air: VirtualAir) -> None:
    meter = make_meter(air, "bonded-only-meter")
    meter.take_reading(100)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        since = bytes(RecordAccessControlPoint.report(at_least=datetime(2026, 1, 1)))
        await client.write_gatt_char(RACP, since, response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x09"
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    # an mmol/L meter: concentration in mol/L, unit flag set
    measurement = GlucoseMeasurement.from_bytes(transfer.received[0][1])
    assert measurement.concentration_unit == "mol/L"
    assert measurement.concentration_mmol_l == pytest.approx(5.6)


async def test_bonding_is_required_before_racp_and_cccds(air: VirtualAir) -> None:
    meter = make_meter(air)
    meter.take_reading(100)
    await meter.power_on()
    _, client_cls = air.backends()
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError) as cccd:
            await client.start_notify(MEASUREMENT, lambda _c, _d: None)
        assert cccd.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
        with pytest.raises(BleakGATTProtocolError) as racp:
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert racp.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
        # DIS stays readable without a bond
        assert await client.read_gatt_char("2a29") == bytearray(b"Ascensia Diabetes Care")


async def test_racp_without_indications_and_a_second_procedure_are_refused(
    air: VirtualAir,
) -> None:
    meter = make_meter(air, faults=Faults(slow_response_s=0.05))
    for value in range(90, 100):
        meter.take_reading(value)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        with pytest.raises(BleakGATTProtocolError) as not_configured:
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert not_configured.value.code == 0x81  # GLS 1.0.1 1.6, not the CSS's 0xFD
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        with pytest.raises(BleakGATTProtocolError) as busy:
            await client.write_gatt_char(RACP, b"\x04\x01", response=True)
        assert busy.value.code == 0x80  # GLS 1.0.1 1.6, not the CSS's 0xFE
        await client.write_gatt_char(RACP, b"\x03\x00", response=True)  # abort
        assert await transfer.racp.get() == b"\x06\x00\x03\x01"
    assert len(transfer.received) < 10


async def test_current_time_reads_the_drifting_clock_and_a_write_sets_it(air: VirtualAir) -> None:
    clock = FakeTime()
    meter = make_meter(air, "accu-chek-like", now=clock, clock_drift_ppm=100.0)
    await meter.power_on()
    _, client_cls = air.backends()
    clock.now = T0 + timedelta(days=10)  # 100 ppm over 10 days: +86.4 s
    async with BleakClient(ADDRESS, backend=client_cls) as client:
        await client.pair(passkey=123456)
        shown = CurrentTime.from_bytes(await client.read_gatt_char(CURRENT_TIME))
        # an Accu-Chek-like meter keeps local time (UTC + 60 min)
        assert shown.date_time == datetime(2026, 3, 11, 8, 31, 26)
        await client.write_gatt_char(
            CURRENT_TIME, bytes(CurrentTime.build(datetime(2026, 3, 11, 8, 30))), response=True
        )
        shown = CurrentTime.from_bytes(await client.read_gatt_char(CURRENT_TIME))
        assert shown.date_time == datetime(2026, 3, 11, 8, 30)
