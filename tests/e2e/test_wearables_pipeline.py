"""Wearables end to end: a heart-rate strap and a pulse oximeter (streams, a dropout each,
per-minute summaries; the oximeter's stored spot-checks over the RACP), a CGM (RACP back-fill),
a thermometer and a scale on the virtual air -> the hub -> Mosquitto -> the
real ingest -> PostgreSQL and the VictoriaMetrics mirror: every reading stored once, every
numeric value in the time series, every reading retired from the hub's outbox by its receipt.
The streams' raw samples reach the time series (one point per sample value) and never the
record store, each minute's batch forwarded by a receipt naming it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices.reading import Kind
from devices.sample_wire import batch_from_json
from firmware_sims.air import VirtualAir
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.faults import Faults
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import get_model
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.vitals_devices import Thermometer, WeightScale
from gateway.delivery import publish_loop, receipt_loop
from gateway.publisher import MqttConfig, Publisher
from tests.gateway.sims import ShiftedClock, hub
from tests.ingest.support import (
    IngestProcess,
    check_delivery,
    end_session,
    expected_samples,
    ingest_env,
    vm_samples,
)
from tests.support.record import enrol
from tests.support.servers import MosquittoServer, VictoriaMetricsServer


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_wearables_reach_the_record_store_and_the_time_series(
    air: VirtualAir,
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
    pg_url: str,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:8]
    patient = f"w{tag}"
    client_id = f"ingest-w-{tag}"
    env = ingest_env(
        pg_url,
        mosquitto.port,
        f"g{tag}",
        client_id,
        tsdb_url=victoria_metrics.url,
        tsdb_token="test-token-0123456789abcdef",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    await asyncio.to_thread(ingest.start)
    await asyncio.to_thread(enrol, pg_url, [("gw-test", patient)])  # ingest checks enrolment
    now = datetime.now(UTC)
    strap = HeartRateStrap(
        air, get_model("polar-like"), serial=f"H{tag}", address="F4:00:00:00:01:01",
        period_s=0.1, faults=Faults(disconnect_after_records=30),
    )  # fmt: skip
    cgm = ContinuousGlucoseMonitor(
        air, get_model("cgm-like"), serial=f"C{tag}", address="F5:00:00:00:01:01",
        session_start_utc=now - timedelta(hours=12),
    )  # fmt: skip
    cgm.advance_to(now)
    thermometer = Thermometer(
        air, get_model("thermometer-like"), serial=f"T{tag}", address="F6:00:00:00:01:01"
    )
    scale = WeightScale(air, get_model("scale-like"), serial=f"S{tag}", address="F7:00:00:00:01:01")
    for day in range(3):
        thermometer.take(37.0 + day * 0.7, at=now - timedelta(days=3 - day))
        scale.weigh(82.0 + day, at=now - timedelta(days=3 - day))
    oximeter = PulseOximeter(
        air, get_model("oximeter-like"), serial=f"O{tag}", address="F8:00:00:00:01:01",
        period_s=0.1, faults=Faults(disconnect_after_records=30),
    )  # fmt: skip
    oximeter.spot_check(96.0, 70.0, at=now - timedelta(hours=5))
    devices = (strap, oximeter, cgm, thermometer, scale)
    for device in devices:
        await device.power_on()
    clock = ShiftedClock()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with hub(air, tmp_path, clock=clock) as h:
            publisher = Publisher("gw-test", MqttConfig(mosquitto.host, mosquitto.port))
            async with publisher:
                await publisher.wait_connected(10)
                samples = h.gateway.samples
                assert samples is not None
                tasks = [
                    asyncio.create_task(
                        publish_loop(
                            h.outbox, publisher, clock, h.gateway.wake, poll_s=0.1,
                            samples=samples,
                        )
                    ),
                    asyncio.create_task(receipt_loop(h.outbox, publisher, clock, samples)),
                ]  # fmt: skip
                for device in devices:
                    result = await h.gateway.pair(device.address, patient, scan_s=0.4)
                    assert result.outcome == "complete", (device.address, result.detail)
                await h.gateway.sync_round(0.4)  # starts the strap's stream
                streams = list(h.gateway.streams.values())
                assert len(streams) == 2
                for stream in streams:  # each drops its link after 30 notifications
                    assert (await asyncio.wait_for(stream, 15)).outcome == "disconnected"
                clock.shift = timedelta(minutes=2)  # close the minutes streamed so far
                assert await h.gateway.summarize_streams() >= 1
                async with asyncio.timeout(60):
                    while h.outbox.stats(clock()).pending or samples.batch_counts()[0]:  # noqa: ASYNC110 - polls SQLite
                        await asyncio.sleep(0.1)
                raw_samples = samples.count()
                readings = [
                    r for p in h.registry.all() for r in h.outbox.latest(p.device_id, 10_000)
                ]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        kinds = {r.kind for r in readings}
        assert kinds == {
            Kind.HEART_RATE,
            Kind.SPO2,
            Kind.CGM_GLUCOSE,
            Kind.BODY_TEMPERATURE,
            Kind.BODY_WEIGHT,
        }
        with sqlite3.connect(tmp_path / "gateway.sqlite") as hub_db:
            payloads = [row[0] for row in hub_db.execute("SELECT payload FROM sample_batches")]
        batches = [batch_from_json(json.loads(p), "batch") for p in payloads]
        assert {b.kind for b in batches} == {Kind.HEART_RATE, Kind.SPO2}
        assert sum(len(b.dt_ms) for b in batches) == raw_samples >= 40
        raw_points = {
            (f"{b.kind.value}_samples_{name}", b.patient_id, b.device_id, b.t0_ms + dt)
            for b in batches
            for name, column in b.values.items()
            for dt, value in zip(b.dt_ms, column, strict=True)
            if value is not None
        }
        engine = sa.create_engine(pg_url)
        report = check_delivery(engine, {r.reading_id for r in readings})
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT kind, count(*) FROM readings WHERE patient_id = :p GROUP BY kind"),
                {"p": patient},
            ).all()
        engine.dispose()
        assert report.ok, (len(report.missing), report.duplicate_rows)
        by_kind = {str(kind): int(count) for kind, count in stored}
        assert by_kind == {k.value: sum(r.kind is k for r in readings) for k in kinds}
        expected = expected_samples(readings) | raw_points
        async with asyncio.timeout(60):
            while True:
                victoria_metrics.force_flush()
                found = vm_samples(victoria_metrics.url, patient)
                if expected <= set(found):
                    break
                await asyncio.sleep(0.5)
        assert set(found) == expected
        assert all(count == 1 for count in found.values())
        # The record store holds the minute summaries only (checked above, kind by kind).
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(ingest.stop)
        await asyncio.to_thread(end_session, mosquitto.port, client_id)
