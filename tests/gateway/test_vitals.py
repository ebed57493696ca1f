"""A thermometer and a scale through real bleak on the virtual air into the hub: stored
readings indicated on connect, each stored once with its device time, a dropout mid-transfer
resumed next time, malformed indications quarantined."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devices.reading import Kind
from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from firmware_sims.models import get_model
from firmware_sims.vitals_devices import Thermometer, WeightScale
from tests.gateway.sims import hub, sync_heard


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_temperatures_and_weights_arrive_once_each(air: VirtualAir, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    thermometer = Thermometer(
        air, get_model("thermometer-like"), serial="T001", address="F6:00:00:00:00:01"
    )
    scale = WeightScale(air, get_model("scale-like"), serial="W001", address="F7:00:00:00:00:01")
    for day in range(5):
        thermometer.take(36.6 + day * 0.5, at=now - timedelta(days=5 - day))
        scale.weigh(80.0 + day * 0.8, at=now - timedelta(days=5 - day))
    await thermometer.power_on()
    await scale.power_on()
    async with hub(air, tmp_path) as h:
        t = await h.gateway.pair(thermometer.address, "p-1", scan_s=0.4)
        w = await h.gateway.pair(scale.address, "p-1", scan_s=0.4)
        assert (t.outcome, t.stored, w.outcome, w.stored) == ("complete", 5, "complete", 5)
        thermometer.take(38.4)
        again = await sync_heard(h.gateway, devices=2)
        assert sorted((r.outcome, r.stored) for r in again.values()) == [
            ("complete", 1),
            ("nothing_new", 0),
        ]
        temps = h.outbox.latest(t.device.device_id, 10)  # type: ignore[union-attr]
        weights = h.outbox.latest(w.device.device_id, 10)  # type: ignore[union-attr]
    assert sorted(r.values["body_temperature_c"] for r in temps) == pytest.approx(
        [36.6, 37.1, 37.6, 38.1, 38.4, 38.6]
    )
    assert {r.kind for r in temps} == {Kind.BODY_TEMPERATURE}
    assert all(r.context["temperature_site"] == "ear" for r in temps)
    assert sorted(r.values["body_weight_kg"] for r in weights) == pytest.approx(
        [80.0, 80.8, 81.6, 82.4, 83.2]
    )
    newest = max(weights, key=lambda r: r.measured_at)
    assert abs((newest.measured_at - (now - timedelta(days=1))).total_seconds()) < 2


async def test_a_scale_that_drops_the_link_sends_the_rest_next_time(
    air: VirtualAir, tmp_path: Path
) -> None:
    scale = WeightScale(
        air,
        get_model("scale-like"),
        serial="W002",
        address="F7:00:00:00:00:02",
        faults=Faults(disconnect_after_records=2, malformed_every=4),
    )
    now = datetime.now(UTC)
    for day in range(6):
        scale.weigh(70.0 + day, at=now - timedelta(days=6 - day))
    await scale.power_on()
    async with hub(air, tmp_path) as h:
        first = await h.gateway.pair(scale.address, "p-1", scan_s=0.4)
        assert first.stored == 2
        scale.faults = Faults(malformed_every=2)  # every second indication from now on
        again = await sync_heard(h.gateway)
        [result] = again.values()
        assert result.stored == 2  # 3, 5 arrive; 4 and 6 are malformed (indications 4 and 6)
        assert len(h.outbox.quarantined()) == 2
