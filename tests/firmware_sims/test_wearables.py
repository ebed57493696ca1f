"""The wearable simulators read by plain bleak: a strap's stream, a CGM's records packed several
to a notification with their E2E-CRC, warm-up and expiry; and their physiology (pure)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from devices.codecs import (
    CgmFeature,
    CgmMeasurementNotification,
    CgmSessionStartTime,
    HeartRateMeasurement,
)
from firmware_sims.air import VirtualAir
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import get_model
from firmware_sims.physiology_hr import HeartRateModel, HeartRateParams
from firmware_sims.physiology_vitals import TemperatureParams, VitalsModel, WeightParams

HRM = "00002a37-0000-1000-8000-00805f9b34fb"
CGM = "00002aa7-0000-1000-8000-00805f9b34fb"
RACP = "00002a52-0000-1000-8000-00805f9b34fb"
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


async def test_a_strap_notifies_heart_rate_with_rr_intervals(air: VirtualAir) -> None:
    strap = HeartRateStrap(
        air, get_model("polar-like"), serial="S1", address="F4:00:00:00:00:09", period_s=0.05
    )
    await strap.power_on()
    _, client_cls = air.backends()
    got: asyncio.Queue[bytes] = asyncio.Queue()
    async with BleakClient(strap.address, backend=client_cls, pair=True) as client:
        assert client.mtu_size == 247  # a 4.2+ wearable part
        await client.start_notify(HRM, lambda _c, d: got.put_nowait(bytes(d)))
        first = [HeartRateMeasurement.from_bytes(await got.get()) for _ in range(5)]
    assert all(m.sensor_contact is True and m.rr_intervals_1024ths for m in first)
    assert all(50 <= m.heart_rate_bpm <= 90 for m in first)


async def test_a_cgm_packs_records_into_notifications_with_their_crc(air: VirtualAir) -> None:
    cgm = ContinuousGlucoseMonitor(
        air, get_model("cgm-like"), serial="G1", address="F5:00:00:00:00:09",
        session_start_utc=START, warmup_min=120, lifetime_days=1.0,
    )  # fmt: skip
    assert cgm.advance_to(START + timedelta(minutes=119)) == []  # warming up: nothing
    made = cgm.advance_to(START + timedelta(days=3))  # the sensor expires after one day
    assert len(made) == (1440 - 120) // 5 + 1 and cgm.expired
    assert made[-1].status == 0x01  # session stopped
    await cgm.power_on()
    _, client_cls = air.backends()
    notifications: list[bytes] = []
    done: asyncio.Queue[bytes] = asyncio.Queue()

    def on_data(char: BleakGATTCharacteristic, data: bytearray) -> None:
        (done.put_nowait if char.uuid == RACP else notifications.append)(bytes(data))

    async with BleakClient(cgm.address, backend=client_cls, pair=True) as client:
        feature = CgmFeature.from_bytes(await client.read_gatt_char("2aa8"))
        start = CgmSessionStartTime.from_bytes(await client.read_gatt_char("2aaa"))
        await client.start_notify(CGM, on_data)
        await client.start_notify(RACP, on_data)
        await client.write_gatt_char(RACP, b"\x01\x01", response=True)
        assert await done.get() == b"\x06\x00\x01\x01"
    assert feature.e2e_crc_supported and start.start_utc == START and start.with_e2e_crc
    records = [r for n in notifications for r in CgmMeasurementNotification.from_bytes(n).records]
    assert records == made
    assert len(notifications) < len(made) / 20  # dozens of 8-octet records per 247-octet MTU


def test_heart_rate_rises_with_exercise_and_rr_follows_the_rate() -> None:
    model = HeartRateModel(HeartRateParams(exercise_windows_s=((60.0, 300.0),)), seed=3)
    assert model.bpm(30) == pytest.approx(68)
    assert model.bpm(290) > 130 > model.bpm(70)
    assert model.bpm(600) < 75  # recovered
    rate, intervals = model.beat(30)
    assert 1 <= len(intervals) <= 3
    assert sum(intervals) / len(intervals) / 1024 == pytest.approx(60 / rate, abs=0.1)


def test_fever_days_and_fluid_retention() -> None:
    model = VitalsModel(
        TemperatureParams(fever_days=(3,)), WeightParams(retention_days=(5,)), seed=1
    )
    assert model.temperature_c(3, 17.0) >= 38.0 > model.temperature_c(2, 17.0)
    gain = model.weight_kg(8) - model.weight_kg(4)
    assert gain > 1.5  # 2.5 kg over three days, seen through 0.3 kg noise
