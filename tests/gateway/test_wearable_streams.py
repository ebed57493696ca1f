"""A heart-rate strap through real bleak on the virtual air into the hub: pairing checks the
stream starts, streams run as their own tasks, a dropout is survived by reconnecting, samples are
kept raw on the hub and reduced to per-minute summaries in the outbox (once each)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from devices.reading import Kind, reading_from_json, reading_to_json
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import get_model
from firmware_sims.physiology_hr import HeartRateParams
from tests.gateway.sims import ShiftedClock, hub


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


def make_strap(air: VirtualAir, **kwargs: object) -> HeartRateStrap:
    return HeartRateStrap(
        air,
        get_model("polar-like"),
        serial="C1234567",
        address="F4:00:00:00:00:01",
        physiology=HeartRateParams(resting_bpm=62.0),
        period_s=0.1,  # ten notifications a second: a minute's worth of samples in seconds
        **kwargs,  # type: ignore[arg-type]
    )


async def _wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 (a count on disk)
            await asyncio.sleep(0.05)


async def test_a_strap_streams_survives_a_dropout_and_is_summarized_per_minute(
    air: VirtualAir, tmp_path: Path
) -> None:
    strap = make_strap(air, faults=Faults(disconnect_after_records=25))
    await strap.power_on()
    clock = ShiftedClock()
    async with hub(air, tmp_path, clock=clock) as h:
        paired = await h.gateway.pair(strap.address, "p-1", scan_s=0.4)
        assert paired.outcome == "complete", paired.detail  # the stream started
        assert h.outbox.reading_ids() == []  # pairing stores samples, publishes nothing yet
        samples = h.gateway.samples
        assert samples is not None
        assert samples.count() > 0

        results = await h.gateway.sync_round(0.4)
        assert results == {}  # the stream runs as its own task
        [task] = h.gateway.streams.values()
        ended = await asyncio.wait_for(task, 10)  # the strap drops the link after 25
        assert ended.outcome == "disconnected"
        before = samples.count()

        await h.gateway.sync_round(0.4)  # heard again: the stream starts again
        await _wait_for(lambda: samples.count() > before + 20)
        await h.gateway.stop_streams()

        clock.shift = timedelta(minutes=2)  # every minute so far is closed now
        made = await h.gateway.summarize_streams()
        assert made >= 1
        assert await h.gateway.summarize_streams() == 0  # each minute once
        total = samples.count()
        assert samples.count(summarized=False) == 0
        rows = h.outbox.latest(paired.device.device_id, 100)  # type: ignore[union-attr]
        assert {r.kind for r in rows} == {Kind.HEART_RATE}
        assert sum(int(r.values["sample_count"]) for r in rows) == total  # type: ignore[arg-type]
        for reading in rows:
            values = reading.values
            assert values["heart_rate_lowest_per_min"] <= values["heart_rate_per_min"]  # type: ignore[operator]
            assert values["heart_rate_per_min"] <= values["heart_rate_highest_per_min"]  # type: ignore[operator]
            assert 40 <= values["heart_rate_per_min"] <= 90  # type: ignore[operator]
            assert reading.measured_at.second == 0 and "device_time_absent" in reading.status
            assert reading_from_json(json.loads(json.dumps(reading_to_json(reading)))) == reading


async def test_summarized_samples_are_pruned_after_the_retention(
    air: VirtualAir, tmp_path: Path
) -> None:
    strap = make_strap(air)
    await strap.power_on()
    clock = ShiftedClock()
    async with hub(air, tmp_path, clock=clock, sample_retention_s=600) as h:
        await h.gateway.pair(strap.address, "p-1", scan_s=0.4)
        samples = h.gateway.samples
        assert samples is not None and samples.count() > 0
        clock.shift = timedelta(minutes=2)
        await h.gateway.summarize_streams()
        assert samples.count() == samples.count(summarized=True) > 0  # kept: within 10 min
        clock.shift = timedelta(minutes=15)
        await h.gateway.summarize_streams()
        assert samples.count() == 0
        assert len(h.outbox.reading_ids()) >= 1  # the summaries stay until receipted


async def test_an_undecodable_notification_is_quarantined(air: VirtualAir, tmp_path: Path) -> None:
    strap = make_strap(air, faults=Faults(malformed_every=5))
    await strap.power_on()
    async with hub(air, tmp_path) as h:
        result = await h.gateway.pair(strap.address, "p-1", scan_s=0.4)
        assert result.outcome == "complete"
        quarantined = h.outbox.quarantined()
        assert quarantined and all(q.uuid.startswith("00002a37") for q in quarantined)
