"""A continuous glucose monitor through real bleak on the virtual air into the hub: RACP
back-fill of everything since the warm-up, then only what was missed (Time Offset >= last + 1),
a dropout mid-transfer resumed from the last record kept, E2E-CRC failures quarantined, a new
sensor session fetched from its start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devices.reading import Kind
from firmware_sims.air import VirtualAir
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.faults import Faults
from firmware_sims.models import get_model
from tests.gateway.sims import hub, sync_heard

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


def make_cgm(air: VirtualAir, **kwargs: object) -> ContinuousGlucoseMonitor:
    return ContinuousGlucoseMonitor(
        air,
        get_model("cgm-like"),
        serial="CGM0001",
        address="F5:00:00:00:00:01",
        session_start_utc=START,
        utc_offset_min=480,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_back_fill_then_only_what_was_missed(air: VirtualAir, tmp_path: Path) -> None:
    cgm = make_cgm(air)
    made = cgm.advance_to(START + timedelta(hours=24))  # 23 h after a 1 h warm-up: 277 records
    await cgm.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(cgm.address, "p-1", scan_s=0.4)
        assert (first.outcome, first.stored) == ("complete", len(made)), first.detail
        cgm.advance_to(START + timedelta(hours=25))  # the next hour: 12 more
        again = await sync_heard(h.gateway)
        assert [(r.outcome, r.stored) for r in again.values()] == [("complete", 12)]
        nothing = await sync_heard(h.gateway)
        assert [r.outcome for r in nothing.values()] == ["nothing_new"]
        [paired] = h.registry.all()
        readings = h.outbox.latest(paired.device_id, 1000)
    assert len(readings) == len(made) + 12 == len({r.reading_id for r in readings})
    assert {r.kind for r in readings} == {Kind.CGM_GLUCOSE}
    first_record = min(readings, key=lambda r: r.sequence or 0)
    assert first_record.sequence == 60  # the first record after the warm-up
    # Time Offset from the session start; the sensor's local time is UTC+8
    assert first_record.measured_at == START + timedelta(minutes=60)
    assert (
        first_record.device_time
        == (START + timedelta(minutes=540)).replace(tzinfo=None).isoformat()
    )
    assert all(2.2 <= r.values["glucose_mmol_l"] <= 22.3 for r in readings)  # type: ignore[operator]


async def test_a_dropout_mid_transfer_resumes_from_the_last_record_kept(
    air: VirtualAir, tmp_path: Path
) -> None:
    cgm = make_cgm(air, faults=Faults(disconnect_after_records=100))
    made = cgm.advance_to(START + timedelta(hours=30))
    await cgm.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(cgm.address, "p-1", scan_s=0.4)
        assert first.outcome == "disconnected"
        assert 100 <= first.stored < len(made)  # whole notifications of records, in order
        cgm.faults = Faults()
        again = await sync_heard(h.gateway)
        [result] = again.values()
        assert result.outcome == "complete"
        assert first.stored + result.stored == len(made)
        assert len(h.outbox.reading_ids()) == len(made)


async def test_records_with_a_bad_e2e_crc_are_quarantined(air: VirtualAir, tmp_path: Path) -> None:
    cgm = make_cgm(air, faults=Faults(malformed_every=50))
    made = cgm.advance_to(START + timedelta(hours=10))
    await cgm.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(cgm.address, "p-1", scan_s=0.4)
        assert result.outcome == "complete"
        quarantined = h.outbox.quarantined()
        assert quarantined and all("e2e_crc" in q.reason for q in quarantined)
        # a notification holds several records: the one with the bad CRC takes its packet along
        assert result.stored < len(made)


async def test_a_new_sensor_session_is_fetched_from_its_start(
    air: VirtualAir, tmp_path: Path
) -> None:
    cgm = make_cgm(air)
    cgm.advance_to(START + timedelta(hours=3))
    await cgm.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(cgm.address, "p-1", scan_s=0.4)
        assert (first.outcome, first.stored) == ("complete", 25)
        # a new sensor: a new session start, Time Offsets from 0 again, old records gone
        cgm.session_start_utc = START + timedelta(hours=4)
        cgm.racp.records.clear()
        cgm._next_offset = cgm.warmup_min
        cgm.advance_to(START + timedelta(hours=6))
        again = await sync_heard(h.gateway)
        assert [(r.outcome, r.stored) for r in again.values()] == [("complete", 13)]
