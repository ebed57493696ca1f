"""Raw samples on the hub become one batch per device and minute, in the transaction that
summarizes the minute; resent with backoff until a receipt names them, expired (counted) once
past the retention, never before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.reading import DeviceInfo, Kind
from devices.sample_wire import batch_from_json, sample_batch_id
from devices.sessions import Sample
from devices.sessions.summary import Stream
from gateway.outbox import Outbox
from gateway.samples import SampleStore

MINUTE = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DEVICE = DeviceInfo("dev-hr-1", "Acme", "Strap", "H1", "1.0")


def _store(tmp_path: Path, **kw: float) -> tuple[SampleStore, Outbox]:
    path = tmp_path / "gw.sqlite"
    return SampleStore(path, retention_s=kw.get("retention_s", 3600.0), resend_s=10.0), Outbox(path)


def _samples(minute: datetime, n: int = 60) -> list[Sample]:
    return [
        Sample(minute + timedelta(seconds=k, milliseconds=250),
               (("heart_rate_per_min", 70.0 + k % 5), ("rr_interval_s", 0.85)))
        for k in range(n)
    ]  # fmt: skip


def test_a_summarized_minute_becomes_one_batch_with_every_sample(tmp_path: Path) -> None:
    samples, outbox = _store(tmp_path)
    stream = Stream(DEVICE, "p-1", "gw-1", Kind.HEART_RATE)
    samples.store(stream, _samples(MINUTE) + _samples(MINUTE + timedelta(minutes=1), 10))
    now = MINUTE + timedelta(minutes=1, seconds=30)  # the second minute is still open
    assert samples.summarize(now, outbox, "gw-1") == 1
    [(batch_id, payload)] = samples.due_batches(now, 10)
    batch = batch_from_json(json.loads(payload), "batch")
    t0_ms = int(MINUTE.timestamp() * 1000)
    assert batch_id == batch.batch_id == sample_batch_id(DEVICE.id, Kind.HEART_RATE, t0_ms)
    assert batch.dt_ms == tuple(k * 1000 + 250 for k in range(60))
    assert batch.values["heart_rate_per_min"][:3] == (70.0, 71.0, 72.0)
    assert samples.batch_counts() == (1, 0)
    # Summarizing again (as after a crash before the samples were marked) makes no new batch.
    assert samples.summarize(now, outbox, "gw-1") == 0
    assert samples.batch_counts() == (1, 0)


def test_resent_with_backoff_until_a_receipt_names_it(tmp_path: Path) -> None:
    samples, outbox = _store(tmp_path)
    samples.store(Stream(DEVICE, "p-1", "gw-1", Kind.HEART_RATE), _samples(MINUTE))
    now = MINUTE + timedelta(minutes=2)
    samples.summarize(now, outbox, "gw-1")
    [(batch_id, _)] = samples.due_batches(now, 10)
    samples.mark_sent([batch_id], now)
    assert samples.due_batches(now + timedelta(seconds=9), 10) == []
    assert len(samples.due_batches(now + timedelta(seconds=10), 10)) == 1
    samples.mark_sent([batch_id], now + timedelta(seconds=10))  # second attempt: 20 s
    assert samples.due_batches(now + timedelta(seconds=29), 10) == []
    samples.make_all_due(now + timedelta(seconds=11))  # reconnected: everything due at once
    assert len(samples.due_batches(now + timedelta(seconds=11), 10)) == 1
    assert samples.mark_forwarded([batch_id, "unknown"], now) == 1
    assert samples.due_batches(now + timedelta(days=1), 10) == []
    assert samples.batch_counts() == (0, 1)


def test_unforwarded_batches_expire_after_the_retention_and_are_counted(tmp_path: Path) -> None:
    samples, outbox = _store(tmp_path, retention_s=600.0)
    stream = Stream(DEVICE, "p-1", "gw-1", Kind.HEART_RATE)
    samples.store(stream, _samples(MINUTE))
    samples.summarize(MINUTE + timedelta(minutes=2), outbox, "gw-1")
    samples.summarize(MINUTE + timedelta(minutes=9), outbox, "gw-1")
    assert samples.batch_counts() == (1, 0) and samples.batches_expired == 0
    samples.summarize(MINUTE + timedelta(minutes=11), outbox, "gw-1")
    assert samples.batch_counts() == (0, 0) and samples.batches_expired == 1
    assert samples.count() == 0  # the raw samples went with their retention too


def test_no_batches_when_forwarding_is_off(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"
    samples = SampleStore(path, retention_s=3600.0, forward=False)
    samples.store(Stream(DEVICE, "p-1", "gw-1", Kind.HEART_RATE), _samples(MINUTE))
    assert samples.summarize(MINUTE + timedelta(minutes=2), Outbox(path), "gw-1") == 1
    assert samples.batch_counts() == (0, 0)
