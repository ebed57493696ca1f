"""A pulse oximeter through real bleak on the virtual air into the hub: stored spot-checks
back-filled over the RACP on every connection (each stored once), the continuous stream kept on
the hub and summarized per minute, a spot-check taken while connected stored at once, a
dropout survived by reconnecting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devices.reading import Kind
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from firmware_sims.models import get_model
from firmware_sims.pulse_oximeter import PulseOximeter, SpO2Params
from tests.gateway.sims import ShiftedClock, hub


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_spot_checks_back_filled_and_the_stream_summarized(
    air: VirtualAir, tmp_path: Path
) -> None:
    oximeter = PulseOximeter(
        air,
        get_model("oximeter-like"),
        serial="OX01",
        address="F8:00:00:00:00:01",
        spo2=SpO2Params(desaturations_s=((1.0, 4.0, 85.0),)),
        period_s=0.1,
        faults=Faults(disconnect_after_records=40),
    )
    now = datetime.now(UTC)
    for hours in (30, 20, 10):
        oximeter.spot_check(95.0, 72.0, at=now - timedelta(hours=hours))
    assert oximeter.delivered == set()  # stored, no host has confirmed any yet
    await oximeter.power_on()
    clock = ShiftedClock()
    async with hub(air, tmp_path, clock=clock) as h:
        paired = await h.gateway.pair(oximeter.address, "p-1", scan_s=0.4)
        assert (paired.outcome, paired.stored) == ("complete", 3), paired.detail
        assert paired.device is not None
        assert oximeter.delivered == {0, 1, 2}  # the RACP transfer's indications, confirmed
        device_id = paired.device.device_id
        await h.gateway.sync_round(0.4)  # the stream starts; the stored three come again
        [task] = h.gateway.streams.values()
        await asyncio.sleep(0.5)
        oximeter.spot_check(91.0, 88.0)  # taken while connected: indicated and stored at once
        ended = await asyncio.wait_for(task, 15)  # the oximeter drops the link after 40
        assert ended.outcome == "disconnected"
        assert ended.stored == 1
        assert oximeter.delivered == {0, 1, 2, 3}  # the live one too
        clock.shift = timedelta(minutes=2)
        assert await h.gateway.summarize_streams() >= 1
        readings = h.outbox.latest(device_id, 100)
    spot = [r for r in readings if r.context.get("measurement") == "spot_check"]
    summaries = [r for r in readings if "sample_count" in r.values]
    assert len(spot) == 4 and {r.kind for r in readings} == {Kind.SPO2}
    assert sorted(r.values["spo2_pct"] for r in spot) == [91.0, 95.0, 95.0, 95.0]
    lowest = min(r.values["spo2_lowest_pct"] for r in summaries)  # type: ignore[type-var]
    assert lowest <= 90  # the desaturation shows in the minute's lowest sample
    assert all(50 <= r.values["pulse_per_min"] <= 100 for r in summaries)  # type: ignore[operator]
