"""Raw-sample batches to the time series only, on real PostgreSQL and VictoriaMetrics: written
then receipted; not receipted while the server is down (the hub resends); a bad batch or one
for a patient the hub is not enrolled for kept in quarantine and receipted; nothing ever in
the readings table."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from devices.reading import Kind
from devices.sample_wire import SampleBatch, encode_sample_batches, sample_batch_id
from devices.wire import Receipt
from ingest import schema
from ingest.errors import MirrorError
from ingest.mirror import InfluxLineWriter
from ingest.samples import SampleSink
from ingest.store import make_engine, migrate
from tests.ingest.support import vm_samples
from tests.support.record import enrol
from tests.support.servers import VictoriaMetricsServer, free_port

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
T0 = int(NOW.timestamp() * 1000) - 120_000


def _batch(patient: str, device: str, n: int = 5) -> SampleBatch:
    return SampleBatch(
        sample_batch_id(device, Kind.SPO2, T0), patient, device, Kind.SPO2, T0,
        tuple(k * 1000 for k in range(n)),
        {"spo2_pct": tuple(95.0 + k % 2 for k in range(n)),
         "pulse_per_min": tuple(70.0 if k else None for k in range(n))},
    )  # fmt: skip


def _sink(engine: sa.Engine, url: str, receipts: list[tuple[str, Receipt]]) -> SampleSink:
    writer = InfluxLineWriter(url, "test-token-0123456789abcdef", "homevitals", "homevitals")
    return SampleSink(engine, writer, lambda: NOW, publish=lambda gw, r: receipts.append((gw, r)))


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        readings = conn.execute(sa.select(sa.func.count()).select_from(schema.readings)).scalar()
        quarantined = conn.execute(
            sa.select(sa.func.count()).select_from(schema.quarantine)
        ).scalar()
    return int(readings or 0), int(quarantined or 0)


def test_samples_go_to_the_time_series_and_are_receipted_only_once_written(
    pg_url: str, victoria_metrics: VictoriaMetricsServer
) -> None:
    migrate(pg_url)
    tag = uuid.uuid4().hex[:8]
    patient, gateway = f"s{tag}", f"gw-{tag}"
    enrol(pg_url, [(gateway, patient)])
    engine = make_engine(pg_url)
    receipts: list[tuple[str, Receipt]] = []
    batch = _batch(patient, f"dev-{tag}")
    payload = encode_sample_batches(gateway, [batch])
    topic = f"hv/v1/gw/{gateway}/samples"
    try:
        down = _sink(engine, f"http://127.0.0.1:{free_port()}", receipts)
        with pytest.raises(MirrorError):
            down.handle(topic, payload)
        assert receipts == []  # not written: not receipted, the hub resends
        sink = _sink(engine, victoria_metrics.url, receipts)
        for _ in range(2):  # a resend writes the same points again, kept once
            sink.handle(topic, payload)
        assert receipts == [(gateway, Receipt((), sample_batches=(batch.batch_id,)))] * 2
        victoria_metrics.force_flush()
        found = vm_samples(victoria_metrics.url, patient)
        expected = {("spo2_samples_spo2_pct", patient, batch.device_id, T0 + k * 1000)
                    for k in range(5)} | {
            ("spo2_samples_pulse_per_min", patient, batch.device_id, T0 + k * 1000)
            for k in range(1, 5)}  # fmt: skip
        assert set(found) == expected and set(found.values()) == {1}
        assert _counts(engine) == (0, 0)
    finally:
        engine.dispose()


def test_bad_and_unenrolled_batches_are_quarantined_and_receipted(
    pg_url: str, victoria_metrics: VictoriaMetricsServer, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(pg_url)
    tag = uuid.uuid4().hex[:8]
    gateway = f"gw-{tag}"
    enrol(pg_url, [(gateway, f"s{tag}")])
    engine = make_engine(pg_url)
    receipts: list[tuple[str, Receipt]] = []
    good, stranger = _batch(f"s{tag}", f"dev-{tag}"), _batch(f"x{tag}", f"dev2-{tag}")
    payload = encode_sample_batches(gateway, [good, stranger])
    envelope = json.loads(encode_sample_batches(gateway, [_batch(f"s{tag}", f"dev3-{tag}")]))
    envelope["batches"][0]["values"]["spo2_pct"][0] = 195  # out of range: the batch is bad
    bad = json.dumps(envelope).encode()
    try:
        sink = _sink(engine, victoria_metrics.url, receipts)
        sink.handle(f"hv/v1/gw/{gateway}/samples", payload)
        sink.handle(f"hv/v1/gw/{gateway}/samples", bad)
        sink.handle(f"hv/v1/gw/{gateway}/samples", b"not json")
        named = [set(r.sample_batches) for _, r in receipts]
        assert named == [{good.batch_id, stranger.batch_id},
                         {sample_batch_id(f"dev3-{tag}", Kind.SPO2, T0)}]  # fmt: skip
        assert _counts(engine) == (0, 3)
        with engine.connect() as conn:
            reasons = sorted(conn.execute(sa.select(schema.quarantine.c.reason)).scalars())
        assert any("not_enrolled" in r for r in reasons)
        assert any("195" in r for r in reasons)
        assert sink.stats.quarantined == 3 and sink.stats.batches == 1
        warned = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
        assert any("values.spo2_pct" in m for m in warned)  # the field is named ...
        assert not any("195" in m or f"x{tag}" in m for m in warned)  # ... never value or patient
    finally:
        engine.dispose()
