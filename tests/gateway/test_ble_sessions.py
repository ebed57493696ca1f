"""The gateway's BLE side through real bleak on the virtual air, against simulated devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_sims.air import VirtualAir
from tests.gateway.sims import PASSKEY, cuff_ids, hub, make_cuff, make_meter, meter_ids, sync_heard


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_meter_500_and_cuff_50_arrive_exactly_once(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=500)
    cuff = make_cuff(air, records=50)
    await meter.power_on()
    await cuff.power_on()
    async with hub(air, tmp_path) as h:
        seen = await h.gateway.discover(0.4)
        assert {s.kind for s in seen} == {"glucose", "blood_pressure"}
        m = await h.gateway.pair(meter.address, "patient-1", passkey=PASSKEY, scan_s=0.4)
        assert (m.outcome, m.stored) == ("complete", 500), m.detail
        c = await h.gateway.pair(cuff.address, "patient-1", scan_s=0.4)
        assert (c.outcome, c.stored) == ("complete", 50), c.detail
        assert set(h.outbox.reading_ids()) == meter_ids(meter) | cuff_ids(cuff)
        assert len(h.outbox.reading_ids()) == 550
        again = await sync_heard(h.gateway, devices=2)
        assert {r.outcome for r in again.values()} == {"nothing_new"}
        assert sum(r.stored for r in again.values()) == 0
        assert len(h.registry.all()) == 2


@pytest.mark.parametrize(
    ("model", "utc_offset_min"),
    [("contour-like", 60), ("accu-chek-like", 480), ("bonded-only-meter", -300)],
)
async def test_measured_at_is_the_true_utc_time_whatever_the_meter_keeps(
    air: VirtualAir, tmp_path: Path, model: str, utc_offset_min: int
) -> None:
    # Contour-like meters keep UTC in Base Time and the local offset in Time Offset; the others
    # keep local time. Either way the corrected time is when the strip went in.
    meter = make_meter(air, model=model, records=0, utc_offset_min=utc_offset_min)
    start = datetime.now(UTC) - timedelta(days=2)
    taken = [start + timedelta(hours=5 * i) for i in range(6)]
    for moment in taken:
        meter.take_reading(100, at_utc=moment)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.stored == 6, result.detail
        [paired] = h.registry.all()
        readings = sorted(
            h.gateway.latest_readings(paired.device_id, 10), key=lambda r: r.sequence or 0
        )
        for reading, moment in zip(readings, taken, strict=True):
            assert abs((reading.measured_at - moment).total_seconds()) < 3
            assert reading.clock_offset_s is not None


async def test_a_synced_meter_waits_its_interval_a_cuff_is_synced_whenever_heard(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=2)
    cuff = make_cuff(air, records=1)
    await meter.power_on()
    await cuff.power_on()
    async with hub(air, tmp_path) as h:
        await h.gateway.discover(0.4)
        await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY)
        await h.gateway.pair(cuff.address, "p-1")
        first = await sync_heard(h.gateway, devices=2, meter_interval_s=3600)
        assert len(first) == 2  # never synced by the loop yet: both due
        second = await sync_heard(h.gateway, meter_interval_s=3600)
        assert [h.registry.get(d).kind for d in second] == ["blood_pressure"]
