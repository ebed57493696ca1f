"""Raw stream samples on the hub, and the per-minute summaries made from them.

A stream session's `SamplesReady` is stored here (one transaction per batch, with who owns the
stream). `summarize(now)` turns every closed minute that still has unsummarized samples into a
summary reading (`devices.sessions.summary`) and stores those in the outbox, where they are
published and retired on receipts like any reading; only then are the samples marked
summarized. A crash between the two makes the same summary again next time, which the outbox
drops by `reading_id` (same samples, same minute, same id and content). Summarized samples are
deleted once older than `retention_s` (`sample_retention_s` in the settings); unsummarized ones
are never deleted.

Raw samples to the time series (`forward=True`): in the transaction that marks a minute's
samples summarized, the same samples become a **sample batch** (`devices.sample_wire`, id over
device, kind and minute), due at once. `due_batches` hands them to the publisher, `mark_sent`
backs each off (`resend_s`, doubling, at most an hour), and `mark_forwarded` records ingest's
receipt. The guarantee is the summaries': a sample batch is resent until a receipt names it or
`retention_s` passes, then dropped and counted (`batches_expired`): without a time-series
server, or after a long outage, the raw samples are lost to the series (the minute's summary
never is). Forwarded batches are deleted with their samples.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from devices.reading import DeviceInfo, Kind, Reading
from devices.sample_wire import SampleBatch, batch_to_json, sample_batch_id
from devices.sessions import Sample
from devices.sessions.summary import PERIOD, Stream, minute_of, summarize
from gateway import db
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

MINUTE_S = int(PERIOD.total_seconds())
MAX_RESEND_S = 3600.0


def sample_batch(
    device_id: str, kind: Kind, patient_id: str, minute: datetime, samples: Sequence[Sample]
) -> SampleBatch:
    """The raw samples of one device's minute as a batch (offsets in ms, one column per value
    name, null where a sample lacks the value)."""
    t0_ms = int(minute.timestamp() * 1000)
    names = sorted({name for s in samples for name, _ in s.values})
    dt = tuple(max(0, round(s.at.timestamp() * 1000) - t0_ms) for s in samples)
    columns = {name: tuple(dict(s.values).get(name) for s in samples) for name in names}
    return SampleBatch(
        sample_batch_id(device_id, kind, t0_ms), patient_id, device_id, kind, t0_ms, dt, columns
    )


class SampleStore:
    """Stream samples in the hub's SQLite file (see the module docstring)."""

    def __init__(
        self, path: Path, *, retention_s: float, forward: bool = True, resend_s: float = 60.0
    ) -> None:
        self._conn = db.connect(path)
        self._lock = threading.Lock()
        self.retention_s = retention_s
        self.forward = forward
        self.resend_s = resend_s
        self.batches_expired = 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def store(self, stream: Stream, samples: Sequence[Sample]) -> int:
        """Keep `samples` of `stream` (and who owns it) in one transaction; returns how many.

        Raises:
            sqlite3.Error: nothing was stored.
        """
        rows = [
            (
                stream.device.id,
                stream.kind.value,
                s.at.timestamp(),
                int(minute_of(s.at).timestamp()),
                json.dumps([list(pair) for pair in s.values]),
            )
            for s in samples
        ]
        owner = json.dumps(
            {
                "id": stream.device.id,
                "manufacturer": stream.device.manufacturer,
                "model": stream.device.model,
                "serial": stream.device.serial,
                "firmware": stream.device.firmware,
            }
        )
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO stream_owners (device_id, kind, patient_id, device)"
                    " VALUES (?, ?, ?, ?)",
                    (stream.device.id, stream.kind.value, stream.patient_id, owner),
                )
                self._conn.executemany(
                    "INSERT INTO samples (device_id, kind, at_s, minute_s, sample_values)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def summarize(self, now: datetime, outbox: Outbox, gateway_id: str) -> int:
        """Store a summary for every closed minute with unsummarized samples; returns how many
        summaries the outbox took (new ones), then prunes samples past the retention.

        Raises:
            OutboxFullError: the outbox is full; the samples stay unsummarized.
            sqlite3.Error: a database failure; the samples stay unsummarized.
        """
        cutoff = int(now.timestamp()) - MINUTE_S
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.id, s.device_id, s.kind, s.at_s, s.minute_s, s.sample_values,"
                " o.patient_id, o.device FROM samples s JOIN stream_owners o"
                " ON o.device_id = s.device_id AND o.kind = s.kind"
                " WHERE s.summarized = 0 AND s.minute_s <= ? ORDER BY s.id",
                (cutoff,),
            ).fetchall()
        groups: dict[tuple[str, str, int], list[tuple[int, Sample]]] = {}
        owners: dict[tuple[str, str], tuple[str, DeviceInfo]] = {}
        for row_id, device_id, kind, at_s, minute_s, values, patient_id, device in rows:
            sample = Sample(
                datetime.fromtimestamp(at_s, UTC),
                tuple((str(n), float(v)) for n, v in json.loads(values)),
            )
            groups.setdefault((device_id, kind, minute_s), []).append((row_id, sample))
            owners[(device_id, kind)] = (patient_id, DeviceInfo(**json.loads(device)))
        made = 0
        by_device: dict[str, list[Reading]] = {}
        done: list[int] = []
        batches: list[tuple[str, int, str, float]] = []
        for (device_id, kind, minute_s), items in sorted(groups.items()):
            patient_id, device = owners[(device_id, kind)]
            stream = Stream(device, patient_id, gateway_id, Kind(kind))
            minute = datetime.fromtimestamp(minute_s, UTC)
            samples = [s for _, s in items]
            try:
                reading = summarize(stream, minute, samples)
            except ValueError as exc:  # samples without the primary value: nothing to say
                log.warning("%s: minute %s not summarized: %s", device_id, minute_s, exc)
            else:
                by_device.setdefault(device_id, []).append(reading)
            if self.forward:
                batch = sample_batch(device_id, Kind(kind), patient_id, minute, samples)
                payload = json.dumps(batch_to_json(batch), separators=(",", ":"))
                batches.append((batch.batch_id, minute_s, payload, now.timestamp()))
            done.extend(row_id for row_id, _ in items)
        for device_id, readings in by_device.items():
            made += outbox.store(device_id, readings, None, (), now).stored
        cutoff_s = now.timestamp() - self.retention_s
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "UPDATE samples SET summarized = 1 WHERE id = ?", [(i,) for i in done]
                )
                self._conn.executemany(
                    "INSERT OR IGNORE INTO sample_batches (batch_id, minute_s, payload,"
                    " next_at_s) VALUES (?, ?, ?, ?)",
                    batches,
                )
                self._conn.execute("DELETE FROM samples WHERE summarized = 1 AND at_s < ?",
                                   (cutoff_s,))  # fmt: skip
                expired = self._conn.execute(
                    "DELETE FROM sample_batches WHERE minute_s < ? AND forwarded_at_s IS NULL",
                    (cutoff_s,),
                ).rowcount
                self._conn.execute("DELETE FROM sample_batches WHERE minute_s < ?", (cutoff_s,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if expired:
            self.batches_expired += expired
            log.warning("%d sample batches expired unforwarded (retention %.0f s)", expired,
                        self.retention_s)  # fmt: skip
        return made

    def due_batches(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Sample batches due for (re)sending, oldest first: (batch id, payload JSON)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT batch_id, payload FROM sample_batches WHERE forwarded_at_s IS NULL"
                " AND next_at_s <= ? ORDER BY minute_s LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
        return [(str(i), str(p)) for i, p in rows]

    def mark_sent(self, batch_ids: Sequence[str], now: datetime) -> None:
        """Back the sent batches off: due again after `resend_s`, doubling per attempt."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE sample_batches SET attempts = attempts + 1,"
                " next_at_s = ? + min(?, ? * (1 << min(attempts, 20))) WHERE batch_id = ?",
                [(now.timestamp(), MAX_RESEND_S, self.resend_s, i) for i in batch_ids],
            )
            self._conn.execute("COMMIT")

    def make_all_due(self, now: datetime) -> None:
        """Every unforwarded batch due now (after a reconnection, or ingest announcing itself)."""
        with self._lock:
            self._conn.execute(
                "UPDATE sample_batches SET next_at_s = ? WHERE forwarded_at_s IS NULL",
                (now.timestamp(),),
            )

    def mark_forwarded(self, batch_ids: Sequence[str], now: datetime) -> int:
        """Record ingest's receipt for these batches; returns how many were pending."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            done = sum(
                self._conn.execute(
                    "UPDATE sample_batches SET forwarded_at_s = ? WHERE batch_id = ?"
                    " AND forwarded_at_s IS NULL",
                    (now.timestamp(), i),
                ).rowcount
                for i in batch_ids
            )
            self._conn.execute("COMMIT")
        return done

    def batch_counts(self) -> tuple[int, int]:
        """(pending, forwarded) sample batches on the hub."""
        with self._lock:
            row = self._conn.execute(
                "SELECT sum(forwarded_at_s IS NULL), sum(forwarded_at_s IS NOT NULL)"
                " FROM sample_batches"
            ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def count(self, device_id: str | None = None, *, summarized: bool | None = None) -> int:
        """How many raw samples the hub holds (for a device, by state)."""
        query = "SELECT count(*) FROM samples WHERE (? IS NULL OR device_id = ?)"
        args: list[object] = [device_id, device_id]
        if summarized is not None:
            query += " AND summarized = ?"
            args.append(int(summarized))
        with self._lock:
            return int(self._conn.execute(query, args).fetchone()[0])
