"""Raw stream samples to the time series only (`hv/v1/gw/+/samples`, `devices.sample_wire`).

A hub forwards each minute's raw samples as a batch after it summarized the minute; the
summary is a reading (record store, receipts, mirror). The samples never enter the record
store: this sink writes them to the time-series server and names them in a receipt
(`sample_batches`), after which the hub stops resending them.

Why it is built so (docs/architecture.md, "Raw samples"):
- Ingest subscribes to samples at **QoS 0**, and the MQTT thread only offers each envelope to a
  bounded queue (`offer`): a full queue drops the envelope (counted, `dropped`). Neither a
  slow nor a stopped time-series server can hold back the readings that share the connection
  (an unacknowledged QoS 1 sample would use up the session's Receive Maximum). Delivery is
  the hub's: it resends every batch no receipt named, until its `sample_retention_s`.
- A batch is receipted only after the server answered 2xx to a synchronous write of all its
  points; resends write the same points again, which the server keeps once (one point per
  series and millisecond: VictoriaMetrics with `-dedup.minScrapeInterval=1ms`, InfluxDB by
  itself).
- Nothing is lost silently: an envelope or batch that does not validate, or one from a hub or
  for a patient that is not enrolled, is kept in the `quarantine` table (reason, raw JSON) and
  receipted, so the hub does not resend it forever.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from careteam.enrolment_store import enrolled_patients
from devices.errors import ReadingValidationError
from devices.sample_wire import SampleBatch, batch_to_json, decode_sample_batches
from devices.wire import Receipt, gateway_id_from_topic
from ingest.errors import IngestError, MirrorError, StoreError
from ingest.mirror import LineWriter
from ingest.points import sample_lines
from ingest.rows import QuarantineItem
from ingest.store import write_batch

log = logging.getLogger(__name__)
Publish = Callable[[str, Receipt], None]


@dataclass(slots=True)
class SampleStats:
    """Counters that move."""

    envelopes: int = 0
    batches: int = 0
    points: int = 0
    quarantined: int = 0
    dropped: int = 0
    write_errors: int = 0


class SampleSink:
    """Envelopes from the MQTT thread to the time series (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        write: LineWriter,
        clock: Callable[[], datetime],
        *,
        publish: Publish | None = None,
        max_queued: int = 64,
        retry_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._write = write
        self.publish = publish  # set once the MQTT client that carries the receipts exists
        self._clock = clock
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(max_queued)
        self._retry_s = retry_s
        self.stats = SampleStats()

    def offer(self, topic: str, payload: bytes) -> None:
        """Take an envelope from the MQTT thread, never blocking (a full queue drops it: the
        hub resends what no receipt named)."""
        try:
            self._queue.put_nowait((topic, payload))
        except queue.Full:
            self.stats.dropped += 1

    def run(self, stop: threading.Event) -> None:
        """Write queued envelopes until `stop` is set."""
        while not stop.is_set():
            try:
                topic, payload = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.handle(topic, payload)
            except MirrorError as exc:
                self.stats.write_errors += 1
                log.warning("samples: %s (not receipted; the hub resends)", exc)
                stop.wait(self._retry_s)
            except (StoreError, sa.exc.SQLAlchemyError) as exc:
                self.stats.write_errors += 1
                log.error("samples: record store: %s (not receipted; the hub resends)", exc)
                stop.wait(self._retry_s)

    def handle(self, topic: str, payload: bytes) -> Receipt | None:
        """Validate, check enrolment, write and receipt one envelope; returns the receipt.

        Raises:
            MirrorError: the time-series server did not take the points (nothing receipted).
            sqlalchemy.exc.SQLAlchemyError: the enrolment look-up or the quarantine write
                failed (nothing receipted).
        """
        self.stats.envelopes += 1
        gateway_id = gateway_id_from_topic(topic)
        now = self._clock()
        try:
            envelope = decode_sample_batches(payload, topic_gateway_id=gateway_id)
        except ReadingValidationError as exc:
            self._quarantine([QuarantineItem(topic, payload, exc.field, exc.reason, gateway_id)],
                             now)  # fmt: skip
            return None
        with self._engine.connect() as conn:
            patients = enrolled_patients(conn, {gateway_id}).get(gateway_id, frozenset())
        kept: list[SampleBatch] = []
        refused: list[QuarantineItem] = []
        for batch in envelope.batches:
            if batch.patient_id in patients:
                kept.append(batch)
            else:
                raw = json.dumps(batch_to_json(batch), separators=(",", ":")).encode()
                refused.append(QuarantineItem(
                    topic, raw, "gateway_id" if not patients else "patient_id",
                    "not_enrolled: samples from a hub or for a patient it is not enrolled for",
                    gateway_id, batch.batch_id,
                ))  # fmt: skip
        for bad in envelope.rejected:
            refused.append(QuarantineItem(topic, bad.raw.encode(), bad.error.field,
                                          bad.error.reason, gateway_id, bad.batch_id))  # fmt: skip
        lines = sample_lines(kept)
        if lines:
            self._write(lines)  # synchronous: a 2xx means written
        if refused:
            self._quarantine(refused, now)
        done = tuple(
            [b.batch_id for b in kept]
            + [item.reading_id for item in refused if item.reading_id is not None]
        )
        self.stats.batches += len(kept)
        self.stats.points += len(lines)
        receipt = Receipt((), sample_batches=done)
        if done:
            if self.publish is None:
                raise IngestError("samples: no receipt publisher wired")
            self.publish(gateway_id, receipt)
        return receipt

    def _quarantine(self, items: list[QuarantineItem], now: datetime) -> None:
        write_batch(self._engine, [], items, now=now)
        self.stats.quarantined += len(items)
        # Fields only above DEBUG: a reason may quote a patient's value.
        fields = ", ".join(sorted({item.field for item in items}))
        log.warning("samples: %d quarantined (fields: %s)", len(items), fields[:200])
        log.debug("samples: quarantined: %s", "; ".join(item.reason for item in items)[:2000])
