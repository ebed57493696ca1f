"""Raw stream samples on the hub, and the per-minute summaries made from them.

A stream session's `SamplesReady` is stored here (one transaction per batch, with who owns the
stream). `summarize(now)` turns every closed minute that still has unsummarized samples into a
summary reading (`devices.sessions.summary`) and stores those in the outbox, where they are
published and retired on receipts like any reading; only then are the samples marked
summarized. A crash between the two makes the same summary again next time, which the outbox
drops by `reading_id` (same samples, same minute, same id and content). Summarized samples are
deleted once older than `retention_s` (`sample_retention_s` in the settings); unsummarized ones
are never deleted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from devices.reading import DeviceInfo, Kind, Reading
from devices.sessions import Sample
from devices.sessions.summary import PERIOD, Stream, minute_of, summarize
from gateway import db
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

MINUTE_S = int(PERIOD.total_seconds())


class SampleStore:
    """Stream samples in the hub's SQLite file (see the module docstring)."""

    def __init__(self, path: Path, *, retention_s: float) -> None:
        self._conn = db.connect(path)
        self._lock = threading.Lock()
        self.retention_s = retention_s

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
        for (device_id, kind, minute_s), items in sorted(groups.items()):
            patient_id, device = owners[(device_id, kind)]
            stream = Stream(device, patient_id, gateway_id, Kind(kind))
            minute = datetime.fromtimestamp(minute_s, UTC)
            try:
                reading = summarize(stream, minute, [s for _, s in items])
            except ValueError as exc:  # samples without the primary value: nothing to say
                log.warning("%s: minute %s not summarized: %s", device_id, minute_s, exc)
            else:
                by_device.setdefault(device_id, []).append(reading)
            done.extend(row_id for row_id, _ in items)
        for device_id, readings in by_device.items():
            made += outbox.store(device_id, readings, None, (), now).stored
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE samples SET summarized = 1 WHERE id = ?", [(i,) for i in done]
            )
            self._conn.execute(
                "DELETE FROM samples WHERE summarized = 1 AND at_s < ?",
                (now.timestamp() - self.retention_s,),
            )
            self._conn.execute("COMMIT")
        return made

    def count(self, device_id: str | None = None, *, summarized: bool | None = None) -> int:
        """How many raw samples the hub holds (for a device, by state)."""
        query = "SELECT count(*) FROM samples WHERE (? IS NULL OR device_id = ?)"
        args: list[object] = [device_id, device_id]
        if summarized is not None:
            query += " AND summarized = ?"
            args.append(int(summarized))
        with self._lock:
            return int(self._conn.execute(query, args).fetchone()[0])
