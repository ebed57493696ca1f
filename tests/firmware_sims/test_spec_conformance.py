"""What an integrator's client written from the specs sees: the Glucose Service's own ATT error
codes, RACP answers per model, GAP Appearance, DIS System ID, a kPa cuff, passkeys drawn per
pairing. Plain bleak on the virtual air, as in test_glucose_meter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError

from devices.codecs import BloodPressureMeasurement, GlucoseFeature, GlucoseFeatureBits
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import MODELS, DeviceKind, get_model
from firmware_sims.peripheral import SimulatedPeripheral
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.vitals_devices import Thermometer, WeightScale
from tests.firmware_sims.test_glucose_meter import (
    ADDRESS,
    MEASUREMENT,
    RACP,
    Transfer,
    make_meter,
    subscribe_all,
)

APPEARANCE = "00002a01-0000-1000-8000-00805f9b34fb"
SYSTEM_ID = "00002a23-0000-1000-8000-00805f9b34fb"
GLUCOSE_FEATURE = "00002a51-0000-1000-8000-00805f9b34fb"
BPM = "00002a35-0000-1000-8000-00805f9b34fb"


def make_device(air: VirtualAir, key: str, serial: str, address: str) -> SimulatedPeripheral:
    model = get_model(key)
    match model.kind:
        case DeviceKind.GLUCOSE_METER:
            return GlucoseMeter(air, model, serial=serial, address=address, passkey=111111)
        case DeviceKind.BP_CUFF:
            return BloodPressureCuff(air, model, serial=serial, address=address, passkey=111111)
        case DeviceKind.HEART_RATE_STRAP:
            return HeartRateStrap(air, model, serial=serial, address=address)
        case DeviceKind.CGM:
            return ContinuousGlucoseMonitor(
                air, model, serial=serial, address=address, session_start_utc=datetime.now(UTC)
            )
        case DeviceKind.THERMOMETER:
            return Thermometer(air, model, serial=serial, address=address)
        case DeviceKind.WEIGHT_SCALE:
            return WeightScale(air, model, serial=serial, address=address)
        case DeviceKind.PULSE_OXIMETER:
            return PulseOximeter(air, model, serial=serial, address=address)
    raise AssertionError(model.kind)


# Assigned Numbers 2.6, the Appearance category (value >> 6) of each kind of device.
CATEGORY = {
    DeviceKind.GLUCOSE_METER: 0x010,
    DeviceKind.BP_CUFF: 0x00E,
    DeviceKind.HEART_RATE_STRAP: 0x00D,
    DeviceKind.CGM: 0x034,
    DeviceKind.THERMOMETER: 0x00C,
    DeviceKind.WEIGHT_SCALE: 0x032,
    DeviceKind.PULSE_OXIMETER: 0x031,
}


async def test_report_with_measurement_notifications_off_fails_0x81(air: VirtualAir) -> None:
    meter = make_meter(air)
    meter.take_reading(100)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await client.start_notify(RACP, transfer.on_data)  # indications on, notifications off
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert refused.value.code == 0x81
        # counting needs no notifications: it is answered on the RACP itself
        await client.write_gatt_char(RACP, b"\x04\x01", response=True)
        assert await transfer.racp.get() == b"\x05\x00\x01\x00"
        await client.start_notify(MEASUREMENT, transfer.on_data)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await transfer.racp.get() == b"\x06\x00\x01\x01"
    assert len(transfer.received) == 1


@pytest.mark.parametrize(
    ("request_bytes", "response"),
    [
        (b"\x06\x00\x01\x01", b"\x06\x00\x06\x02"),  # a response op code written by a client
        (b"\x06\x01", b"\x06\x00\x06\x02"),  # ... even malformed
        (b"\x05\x00\x01\x00", b"\x06\x00\x05\x02"),
        (b"\x00\x01", b"\x06\x00\x00\x02"),  # RFU op code 0
        (b"\x01\x07", b"\x06\x00\x01\x03"),  # RFU operator: invalid operator
    ],
)
async def test_op_codes_a_client_may_not_write_get_op_code_not_supported(
    air: VirtualAir, request_bytes: bytes, response: bytes
) -> None:
    meter = make_meter(air)
    meter.take_reading(100)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, request_bytes, response=True)
        assert await transfer.racp.get() == response
    assert transfer.received == []


@pytest.mark.parametrize(
    ("model", "request_bytes", "response"),
    [
        ("bonded-only-meter", b"\x01\x02\x01\x01\x00", b"\x06\x00\x01\x04"),  # <=
        ("bonded-only-meter", b"\x01\x04\x01\x00\x00\x01\x00", b"\x06\x00\x01\x04"),  # range
        ("bonded-only-meter", b"\x04\x02\x01\x01\x00", b"\x06\x00\x04\x04"),  # count <=
        ("bonded-only-meter", b"\x01\x03\x01\x00\x00", b"\x06\x00\x01\x01"),  # >= works
        ("contour-like", b"\x01\x02\x01\x01\x00", b"\x06\x00\x01\x01"),  # all operators
    ],
)
async def test_operators_a_model_lacks_get_operator_not_supported(
    air: VirtualAir, model: str, request_bytes: bytes, response: bytes
) -> None:
    meter = make_meter(air, model)
    meter.take_reading(100)
    await meter.power_on()
    _, client_cls = air.backends()
    transfer = Transfer()
    async with BleakClient(ADDRESS, backend=client_cls, pair=True) as client:
        await subscribe_all(client, transfer)
        await client.write_gatt_char(RACP, request_bytes, response=True)
        assert await transfer.racp.get() == response


async def test_glucose_feature_says_multiple_bond_only_where_the_meter_bonds_several_hosts(
    air: VirtualAir,
) -> None:
    features = {}
    for i, key in enumerate(("contour-like", "bonded-only-meter")):
        address = f"F1:00:00:00:01:0{i}"
        meter = GlucoseMeter(air, get_model(key), serial=f"S{i}", address=address)
        await meter.power_on()
        _, client_cls = air.backends()
        async with BleakClient(address, backend=client_cls, pair=True) as client:
            raw = await client.read_gatt_char(GLUCOSE_FEATURE)
        features[key] = GlucoseFeature.from_bytes(raw).features
    assert features["contour-like"] & GlucoseFeatureBits.MULTIPLE_BOND
    assert not features["bonded-only-meter"] & GlucoseFeatureBits.MULTIPLE_BOND


async def test_every_model_says_its_appearance_and_a_system_id_of_its_own(
    air: VirtualAir,
) -> None:
    _, client_cls = air.backends()
    radio = await air.central()
    radio.passkey_agent = DisplayReader()
    seen: dict[str, tuple[int, bytes]] = {}
    for i, key in enumerate(sorted(MODELS)):
        address = f"F3:00:00:00:00:{i:02X}"
        device = make_device(air, key, f"SERIAL{i:04d}", address)
        await device.power_on()
        async with BleakClient(address, backend=client_cls) as client:
            appearance = int.from_bytes(await client.read_gatt_char(APPEARANCE), "little")
            system_id = bytes(await client.read_gatt_char(SYSTEM_ID))
        seen[key] = (appearance, system_id)
    for key, (appearance, system_id) in seen.items():
        model = get_model(key)
        assert appearance >> 6 == CATEGORY[model.kind], key
        assert appearance == model.appearance
        assert len(system_id) == 8 and system_id != bytes(8)
        assert int.from_bytes(system_id[5:], "little") == model.oui  # OUI in the top 24 bits
    assert len({system_id for _, system_id in seen.values()}) == len(seen)


async def test_a_kpa_cuff_sends_kilopascal_to_one_decimal(air: VirtualAir) -> None:
    cuff = BloodPressureCuff(air, get_model("kpa-cuff"), serial="K1", address="F2:00:00:00:0A:01")
    await cuff.power_on()
    _, client_cls = air.backends()
    got: asyncio.Queue[bytes] = asyncio.Queue()
    async with BleakClient(cuff.address, backend=client_cls, pair=True) as client:
        await client.start_notify(BPM, lambda _c, d: got.put_nowait(bytes(d)))
        await cuff.measure(132, 84, 70)
        measurement = BloodPressureMeasurement.from_bytes(await got.get())
    assert measurement.unit == "kPa"
    assert measurement.flags & 0x01
    assert measurement.systolic.value == pytest.approx(17.6)  # 132 mmHg / 7.50062
    assert measurement.diastolic.value == pytest.approx(11.2)
    assert measurement.pulse_rate is not None and measurement.pulse_rate.value == 70


class DisplayReader:
    """A patient typing what the device's display shows into the hub (a BlueZ agent's part)."""

    def __init__(self) -> None:
        self.devices: dict[str, GlucoseMeter | BloodPressureCuff] = {}
        self.shown: dict[str, list[int]] = {}
        self.stale = False  # type the number of the previous pairing instead

    async def __call__(self, address: str) -> int | None:
        device = self.devices.get(address)
        if device is None:
            return 111111
        await device.passkey_shown.wait()
        device.passkey_shown.clear()
        number = device.displayed_passkey
        assert number is not None
        history = self.shown.setdefault(address, [])
        if self.stale:
            typed = history[-1] if history[-1] != number else (number + 1) % 1_000_000
            return typed
        history.append(number)
        return number


async def test_passkeys_are_drawn_per_pairing_where_the_device_does_so(air: VirtualAir) -> None:
    reader = DisplayReader()
    radio = await air.central()
    radio.passkey_agent = reader
    _, client_cls = air.backends()
    cuff = BloodPressureCuff(air, get_model("and-like"), serial="A1", address="F2:00:00:00:0B:01")
    meter = GlucoseMeter(air, get_model("accu-chek-like"), serial="R1", address="F1:00:00:00:0B:02")
    for device in (cuff, meter):
        reader.devices[device.address] = device
        await device.power_on()
        for _ in range(3):  # pair, forget, pair again: a new number each time on the cuff
            async with BleakClient(device.address, backend=client_cls, pair=True) as client:
                assert client.is_connected
            await device.forget_bonds()
            await radio.forget_bond(device.address)
    assert reader.shown[meter.address] == [123456] * 3  # a fixed number on the meter's label
    assert len(set(reader.shown[cuff.address])) > 1  # 3 draws of 10^6 are never all equal here
    reader.stale = True  # the number of an earlier pairing is refused
    with pytest.raises(BleakError):
        async with BleakClient(cuff.address, backend=client_cls, pair=True):
            pass
    assert await cuff.bonded_hosts() == []
