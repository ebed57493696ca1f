"""Every fault the simulated devices inject ends in the right outcome: recovered, quarantined
with the raw bytes, or reported to the patient; never a crash, never a silent loss."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.sessions import DeviceCursor
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from tests.gateway.sims import (
    PASSKEY,
    add_records,
    cuff_ids,
    hub,
    make_cuff,
    make_meter,
    meter_ids,
    sync_heard,
)


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_a_meter_that_drops_the_link_after_three_records_every_time_gets_through(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=20, faults=Faults(disconnect_after_records=3))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(meter.address, "patient-1", passkey=PASSKEY, scan_s=0.4)
        assert (first.outcome, first.stored) == ("disconnected", 3)  # kept, cursor moved
        [paired] = h.registry.all()
        stored = [first.stored]
        for _ in range(10):  # each connection brings three more; the last one completes
            [result] = (await sync_heard(h.gateway)).values()
            stored.append(result.stored)
            if result.outcome == "complete":
                break
        assert stored == [3, 3, 3, 3, 3, 3, 2]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)
        assert len(h.outbox.reading_ids()) == 20  # each once
        last = meter.racp.records[-1].measurement
        assert h.outbox.cursor(paired.device_id) == DeviceCursor(
            last.sequence_number, None if last.base_time is None else last.base_time.isoformat()
        )


async def test_silence_before_the_racp_response_times_out_keeping_the_records(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=20, faults=Faults(skip_final_response=True))
    await meter.power_on()
    async with hub(air, tmp_path, silence_timeout_s=0.5) as h:
        first = await h.gateway.pair(meter.address, "patient-1", passkey=PASSKEY, scan_s=0.4)
        assert (first.outcome, first.stored) == ("timeout", 20)  # every record was complete
        meter.faults = Faults()
        again = await sync_heard(h.gateway)
        assert [(r.outcome, r.stored) for r in again.values()] == [("nothing_new", 0)]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)


async def test_sequence_reset_is_detected_and_new_records_fetched(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=5, faults=Faults(sequence_reset_after=5))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        assert (await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)).stored == 5
        add_records(meter, 3, start_days_ago=1)  # sequence numbers start again at 0
        sequences = [r.sequence_number for r in meter.racp.records]
        assert sequences == [0, 1, 2, 3, 4, 0, 1, 2]
        again = await sync_heard(h.gateway)
        assert [r.stored for r in again.values()] == [3]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)


async def test_sequence_wrap_past_65535(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=6, faults=Faults(sequence_start=65530))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        assert (await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)).stored == 6
        [paired] = h.registry.all()
        assert h.outbox.cursor(paired.device_id).last_sequence == 65535  # type: ignore[union-attr]
        add_records(meter, 4, start_days_ago=1)
        assert [r.sequence_number for r in meter.racp.records][-5:] == [65535, 0, 1, 2, 3]
        again = await sync_heard(h.gateway)
        assert [r.stored for r in again.values()] == [4]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)
        assert h.outbox.cursor(paired.device_id).last_sequence == 3  # type: ignore[union-attr]


async def test_a_meter_that_wraps_its_sequence_and_drops_the_link_completes(
    air: VirtualAir, tmp_path: Path
) -> None:
    # 65530..65535 then 0..7, and the link drops after three records on every connection.
    # Asking for "all" after the wrap would start with the six old records and never reach a
    # new one; the range over the half after the cursor starts at 0.
    meter = make_meter(
        air, records=6, faults=Faults(sequence_start=65530, disconnect_after_records=3)
    )
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        [paired] = h.registry.all()
        for _ in range(4):
            if h.outbox.cursor(paired.device_id).last_sequence == 65535:  # type: ignore[union-attr]
                break
            await sync_heard(h.gateway)
        add_records(meter, 8, start_days_ago=1)
        assert [r.sequence_number for r in meter.racp.records][-9:] == [65535, *range(8)]
        outcomes = []
        for _ in range(6):
            [result] = (await sync_heard(h.gateway)).values()
            outcomes.append((result.outcome, result.stored))
            if set(h.outbox.reading_ids()) == meter_ids(meter):
                break
        assert set(h.outbox.reading_ids()) == meter_ids(meter), outcomes
        assert len(h.outbox.reading_ids()) == 14  # each once
        assert h.outbox.cursor(paired.device_id).last_sequence == 7  # type: ignore[union-attr]


async def test_duplicated_records_are_stored_once(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=30, faults=Faults(duplicate_every=4))
    await meter.power_on()
    assert len(meter.racp.records) == 37
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.stored == 30
        assert set(h.outbox.reading_ids()) == meter_ids(meter)


async def test_malformed_notifications_are_quarantined_with_their_bytes(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=30, faults=Faults(malformed_every=10))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.outcome == "complete"
        kept = h.outbox.quarantined()
        assert len(kept) == 3 and all(k.raw and "GlucoseMeasurement" in k.reason for k in kept)
        assert result.stored + len(kept) == 30


async def test_clock_jump_is_corrected_and_the_clock_set(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=4, faults=Faults(clock_jump_after=2, clock_jump_min=180))
    await meter.power_on()
    drift = (meter.device_time() - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    assert drift > 170 * 60
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.stored == 4
        drift = (meter.device_time() - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        assert abs(drift) < 5  # the gateway set the meter's clock
        [paired] = h.registry.all()
        newest = h.gateway.latest_readings(paired.device_id, 1)[0]
        assert newest.clock_offset_s is not None and newest.clock_offset_s > 170 * 60
        assert newest.device_time is not None


async def test_refused_pairing_is_reported_and_nothing_paired(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=3, faults=Faults(refuse_pairing=True))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.outcome == "pairing_refused"
        assert h.registry.all() == [] and h.outbox.reading_ids() == []


async def test_wrong_passkey_is_reported_as_refused(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=3)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=111111, scan_s=0.4)
        assert result.outcome == "pairing_refused" and h.registry.all() == []


async def test_a_forgotten_bond_is_reported_to_the_patient(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=3)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        assert (await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)).stored == 3
        await meter.forget_bonds()
        again = await sync_heard(h.gateway)
        [outcome] = [r.outcome for r in again.values()]
        assert outcome == "not_bonded"  # the patient is asked to pair it again
        assert h.registry.all()[0].last_outcome == outcome


async def test_cuff_that_dumps_its_memory_each_time_is_deduped(
    air: VirtualAir, tmp_path: Path
) -> None:
    cuff = make_cuff(air, model="beurer-like", records=6)
    await cuff.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(cuff.address, "p-1", scan_s=0.4)
        assert (first.outcome, first.stored) == ("complete", 6), first.detail
        again = await sync_heard(h.gateway)
        assert [r.stored for r in again.values()] == [0]
        assert set(h.outbox.reading_ids()) == cuff_ids(cuff)


async def test_cuff_disconnect_mid_transfer_keeps_what_was_indicated(
    air: VirtualAir, tmp_path: Path
) -> None:
    cuff = make_cuff(air, records=8, faults=Faults(disconnect_after_records=3))
    await cuff.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(cuff.address, "p-1", scan_s=0.4)
        assert first.stored == 3  # each indication is committed as it arrives (I1)
        cuff.faults = Faults()
        again = await sync_heard(h.gateway)
        assert [r.stored for r in again.values()] == [5]
        assert set(h.outbox.reading_ids()) == cuff_ids(cuff)


async def test_a_meter_whose_battery_dies_mid_transfer_is_retried(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=60, faults=Faults(power_off_after_records=20))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert (first.outcome, first.stored) == ("disconnected", 20)  # supervision timeout
        meter.faults = Faults()
        await meter.power_on()
        again = await sync_heard(h.gateway)
        assert [r.stored for r in again.values()] == [40]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)


async def test_records_stored_out_of_order_all_arrive_once(air: VirtualAir, tmp_path: Path) -> None:
    meter = make_meter(air, records=12, faults=Faults(out_of_order_every=5))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        assert (
            await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        ).stored == 12
        add_records(meter, 8, start_days_ago=1)
        await sync_heard(h.gateway)
        assert set(h.outbox.reading_ids()) == meter_ids(meter)
        assert len(h.outbox.reading_ids()) == 20


async def test_a_full_disk_is_reported_and_the_cursor_stays(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=400)
    await meter.power_on()
    async with hub(air, tmp_path, outbox_max_bytes=200 * 1024) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert (result.outcome, result.stored) == ("outbox_full", 0)
        [paired] = h.registry.all()  # paired; its records wait on the meter
        assert paired.last_outcome == "outbox_full"
        assert h.outbox.cursor(paired.device_id) is None
        assert h.outbox.reading_ids() == []
