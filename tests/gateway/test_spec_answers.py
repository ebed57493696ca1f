"""The hub against the simulators' spec answers: the Glucose Service's own ATT errors on a RACP
write (0x80 procedure already in progress, 0x81 CCCD improperly configured) are recovered from,
a model without the <= operator still syncs, a kPa cuff's readings are stored in mmHg, and a
cuff that draws its passkey per pairing pairs through the passkey agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from tests.gateway.sims import PASSKEY, cuff_ids, hub, make_cuff, make_meter, meter_ids, sync_heard


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


@pytest.mark.parametrize(
    "faults",
    [Faults(racp_busy_first=True), Faults(cccd_lost_writes=1)],
    ids=["0x80-aborted-then-asked-again", "0x81-subscribed-again"],
)
async def test_a_racp_write_refused_by_a_gls_error_is_recovered_once(
    air: VirtualAir, tmp_path: Path, faults: Faults
) -> None:
    meter = make_meter(air, records=12, faults=faults)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert (result.outcome, result.stored) == ("complete", 12), result.detail
        assert set(h.outbox.reading_ids()) == meter_ids(meter)
    # the fault did fire: the first RACP write met the stale procedure or the lost setting
    assert not meter._stale_procedure_pending and meter._cccd_losses_left == 0


async def test_a_refusal_that_comes_back_ends_the_session_as_a_device_error(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, records=4, faults=Faults(cccd_lost_writes=5))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.4)
        assert result.outcome == "device_error"
        assert result.detail.startswith("00002a52")  # the RACP write, reported with its error
        assert h.outbox.reading_ids() == []


async def test_a_meter_without_less_or_equal_syncs_and_resyncs(
    air: VirtualAir, tmp_path: Path
) -> None:
    meter = make_meter(air, model="bonded-only-meter", records=5)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(meter.address, "p-1", scan_s=0.4)
        assert (first.outcome, first.stored) == ("complete", 5), first.detail
        meter.take_reading(140)
        again = await sync_heard(h.gateway)
        assert [(r.outcome, r.stored) for r in again.values()] == [("complete", 1)]
        assert set(h.outbox.reading_ids()) == meter_ids(meter)


async def test_a_kpa_cuff_is_stored_in_mmhg_with_the_original_kept(
    air: VirtualAir, tmp_path: Path
) -> None:
    cuff = make_cuff(air, model="kpa-cuff", records=3)
    await cuff.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(cuff.address, "p-1", scan_s=0.4)
        assert (result.outcome, result.stored) == ("complete", 3), result.detail
        assert set(h.outbox.reading_ids()) == cuff_ids(cuff)
        [paired] = h.registry.all()
        readings = h.outbox.latest(paired.device_id, 10)
    systolic = sorted(r.values["systolic_mmhg"] for r in readings)  # type: ignore[index]
    # make_cuff stores 120, 121, 122 mmHg; on the air 16.0, 16.1, 16.3 kPa (0.1 kPa steps)
    assert systolic == pytest.approx([120.0, 120.76, 122.26], abs=0.01)


async def test_a_passkey_drawn_for_this_pairing_is_read_from_the_display(
    air: VirtualAir, tmp_path: Path
) -> None:
    cuff = make_cuff(air, model="and-like", records=2)
    cuff.passkey = None  # the model draws one per pairing (make_cuff fixed it for other tests)
    await cuff.power_on()
    radio = await air.central()

    async def read_display(address: str) -> int | None:
        await cuff.passkey_shown.wait()
        return cuff.displayed_passkey

    radio.passkey_agent = read_display
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(cuff.address, "p-1", scan_s=0.4)
        assert (result.outcome, result.stored) == ("complete", 2), result.detail
