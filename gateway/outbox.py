"""The durable outbox: readings stay on the hub's disk until ingest says it has them.

A session's readings, its quarantined packets and the device's new cursor are written in one
SQLite transaction before anything is published, so the cursor is never ahead of stored data.
A reading leaves the `pending` state only when ingest's end-to-end receipt names it
(docs/reliability.md: a broker PUBACK is not delivery). Retired rows are kept (state
`retired`), so a record the device sends again (wrap, reset, a re-pair) is recognised by its
`reading_id` and not queued twice, for `retention_s` (then `prune` deletes them). Unconfirmed
readings are re-published with exponential backoff, each delay jittered (+-20 %) so hubs do
not resend in step. A full disk raises `OutboxFullError` and rolls the whole session back.
Quarantined packets are forwarded to ingest's quarantine (`unforwarded`, `mark_forwarded` on
its receipt) and pruned after the same retention. So are pairing events (`due_pairings`,
`mark_pairings_forwarded`), with one difference: they are sent in order, all pending ones
together, and newer ones never overtake older ones that are still waiting for their receipt.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devices.reading import Reading, reading_from_json, reading_to_json
from devices.sessions.events import DeviceCursor, QuarantinedPacket
from devices.wire import HubPacket, PairingEvent
from gateway import db
from gateway.errors import OutboxFullError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry schedule: first_s, doubling, capped at max_s, each delay spread by +-jitter.

    The jitter keeps a fleet of hubs that lost the broker together from coming back in step
    (a thundering herd on the broker and ingest); `u` is a uniform draw in [0, 1) from the
    caller's random source, 0.5 meaning no spread.
    """

    first_s: float = 30.0
    max_s: float = 3600.0
    jitter_fraction: float = 0.2

    def delay_s(self, attempts: int, u: float = 0.5) -> float:
        """Delay before the next attempt after `attempts` tries (attempts >= 1)."""
        base = float(min(self.max_s, self.first_s * 2 ** max(0, attempts - 1)))
        return base * (1.0 - self.jitter_fraction + 2.0 * self.jitter_fraction * u)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What a commit stored: new readings, ones already known (by reading id), packets kept."""

    stored: int
    already_known: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counts for the status topic and the pairing page."""

    pending: int
    retired: int
    quarantined: int
    oldest_pending_s: float | None


class Outbox:
    """SQLite outbox (thread-safe: one connection behind a lock; call it from a worker thread)."""

    def __init__(
        self,
        path: Path,
        *,
        backoff: Backoff | None = None,
        max_size_bytes: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Open (or create) the outbox at `path`.

        Raises:
            sqlite3.Error: the file cannot be opened.
        """
        self.path = path
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - resend jitter, not cryptography
        self._conn = db.connect(path, max_size_bytes=max_size_bytes)
        self._lock = threading.Lock()
        # Since when sessions could not be stored for want of space (None: the last one was);
        # the heartbeat says so, so the care team hears of it (the devices keep the records).
        self.full_since: datetime | None = None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def durability(self) -> tuple[str, int]:
        """(journal_mode, synchronous) of the outbox's connection: ("wal", 2) when durable."""
        with self._lock:
            return db.durability(self._conn)

    def store(
        self,
        device_id: str,
        readings: Sequence[Reading],
        cursor: DeviceCursor | None,
        quarantined: Sequence[QuarantinedPacket],
        now: datetime,
    ) -> StoreResult:
        """Store a session's readings, quarantined packets and cursor in one transaction.

        Raises:
            OutboxFullError: the disk or the size cap is full; nothing was stored.
            sqlite3.Error: any other database failure; nothing was stored.
        """
        now_s = now.timestamp()
        rows = [
            (r.reading_id, device_id, json.dumps(reading_to_json(r)), now_s, now_s)
            for r in readings
        ]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                before = self._conn.total_changes
                self._conn.executemany(
                    "INSERT OR IGNORE INTO readings"
                    " (reading_id, device_id, payload, state, stored_at_s, next_attempt_s)"
                    " VALUES (?, ?, ?, 'pending', ?, ?)",
                    rows,
                )
                stored = self._conn.total_changes - before
                self._conn.executemany(
                    "INSERT INTO quarantine (device_id, characteristic, raw, reason, received_at_s)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (device_id, q.uuid, q.raw, q.reason, q.received_at.timestamp())
                        for q in quarantined
                    ],
                )
                if cursor is not None:
                    self._conn.execute(
                        "INSERT INTO cursors (device_id, last_sequence, last_device_time,"
                        " updated_at_s) VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
                        " last_sequence = excluded.last_sequence,"
                        " last_device_time = excluded.last_device_time,"
                        " updated_at_s = excluded.updated_at_s",
                        (device_id, cursor.last_sequence, cursor.last_device_time, now_s),
                    )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if db.is_disk_full(exc):
                    log.error(
                        "%s: outbox full, session of %d readings not stored", device_id, len(rows)
                    )
                    if self.full_since is None:
                        self.full_since = now
                    raise OutboxFullError(str(self.path)) from exc
                raise
            if self.full_since is not None:
                log.warning("outbox stores again (full since %s)", self.full_since.isoformat())
                self.full_since = None
        return StoreResult(stored, len(rows) - stored, len(quarantined))

    def cursor(self, device_id: str) -> DeviceCursor | None:
        """The device's stored cursor, or None before its first stored session."""
        with self._lock:
            row = self._conn.execute(
                "SELECT last_sequence, last_device_time FROM cursors WHERE device_id = ?",
                (device_id,),
            ).fetchone()
        return None if row is None else DeviceCursor(row[0], row[1])

    def due(self, now: datetime, limit: int) -> list[Reading]:
        """Pending readings whose next attempt is due, oldest first.

        Payloads were produced by `reading_to_json` from valid readings; parsing them back
        re-checks them. A row that no longer parses (disk corruption, a hand edit) is moved to
        quarantine with its raw payload rather than published or left to block the queue.
        A reading scheduled further ahead than any backoff reaches is due too: the hub's clock
        was stepped back since (its schedule is on the wall clock, kept across restarts).
        """
        latest_s = now.timestamp() + self.backoff.max_s * (1.0 + self.backoff.jitter_fraction)
        with self._lock:
            rows = self._conn.execute(
                "SELECT reading_id, device_id, payload FROM readings WHERE state = 'pending'"
                " AND (next_attempt_s <= ? OR next_attempt_s > ?) ORDER BY stored_at_s, rowid"
                " LIMIT ?",
                (now.timestamp(), latest_s, limit),
            ).fetchall()
        out: list[Reading] = []
        for reading_id, device_id, payload in rows:
            try:
                out.append(reading_from_json(json.loads(payload)))
            except (ValueError, RecursionError) as exc:
                log.error(
                    "%s: outbox row %s is corrupt, quarantined: %s", device_id, reading_id, exc
                )
                self._quarantine_row(str(reading_id), str(device_id), str(payload), str(exc), now)
        return out

    def _quarantine_row(
        self, reading_id: str, device_id: str, payload: str, reason: str, now: datetime
    ) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO quarantine (device_id, characteristic, raw, reason, received_at_s)"
                " VALUES (?, 'outbox', ?, ?, ?)",
                (device_id, payload.encode(), f"corrupt outbox row: {reason}", now.timestamp()),
            )
            self._conn.execute(
                "UPDATE readings SET state = 'retired', retired_as = 'quarantined',"
                " retired_at_s = ? WHERE reading_id = ?",
                (now.timestamp(), reading_id),
            )
            self._conn.execute("COMMIT")

    def mark_attempted(self, reading_ids: Iterable[str], now: datetime) -> None:
        """Record a publish attempt and schedule the next one by the backoff.

        Called before the publish, so a crash right after still counts the attempt.

        Raises:
            sqlite3.Error: the update failed.
        """
        ids = list(reading_ids)
        now_s = now.timestamp()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for reading_id in ids:
                    row = self._conn.execute(
                        "SELECT attempts FROM readings WHERE reading_id = ? AND state = 'pending'",
                        (reading_id,),
                    ).fetchone()
                    if row is None:
                        continue
                    attempts = int(row[0]) + 1
                    delay_s = self.backoff.delay_s(attempts, self._rng.random())
                    self._conn.execute(
                        "UPDATE readings SET attempts = ?, next_attempt_s = ? WHERE reading_id = ?",
                        (attempts, now_s + delay_s, reading_id),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def reschedule_now(self, reading_ids: Iterable[str], now: datetime) -> None:
        """Make readings due again now (the broker refused them, or the link dropped)."""
        with self._lock:
            self._conn.executemany(
                "UPDATE readings SET next_attempt_s = ? WHERE reading_id = ? AND state = 'pending'",
                [(now.timestamp(), reading_id) for reading_id in reading_ids],
            )

    def retry_soon(self, reading_ids: Iterable[str], at: datetime) -> None:
        """Undo the attempt just recorded and make the readings due at `at` (a publish the
        broker refused only because nobody subscribed yet: not a failed delivery).

        Raises:
            sqlite3.Error: the update failed.
        """
        params = [(at.timestamp(), i) for i in reading_ids]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE readings SET attempts = MAX(attempts - 1, 0), next_attempt_s = ?"
                " WHERE reading_id = ? AND state = 'pending'",
                params,
            )
            self._conn.execute("COMMIT")

    def unforwarded(self, now: datetime, limit: int, resend_after_s: float) -> list[HubPacket]:
        """Quarantined packets ingest has not receipted, not sent in the last `resend_after_s`.

        Raises:
            sqlite3.Error: the query failed.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, device_id, characteristic, raw, reason, received_at_s FROM quarantine"
                " WHERE forwarded_at_s IS NULL AND (sent_at_s IS NULL OR sent_at_s <= ?)"
                " ORDER BY id LIMIT ?",
                (now.timestamp() - resend_after_s, limit),
            ).fetchall()
        return [
            HubPacket(int(i), str(d), str(c), bytes(r), str(why), datetime.fromtimestamp(t, UTC))
            for i, d, c, r, why, t in rows
        ]

    def mark_sent(self, packet_ids: Iterable[int], now: datetime) -> None:
        """Record that these packets were just forwarded (resent later unless receipted)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE quarantine SET sent_at_s = ? WHERE id = ?",
                [(now.timestamp(), i) for i in packet_ids],
            )
            self._conn.execute("COMMIT")

    def mark_forwarded(self, packet_ids: Iterable[int], now: datetime) -> int:
        """Record ingest's receipt for forwarded packets; returns how many were new."""
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE quarantine SET forwarded_at_s = ? WHERE id = ? AND forwarded_at_s IS NULL",
                [(now.timestamp(), i) for i in packet_ids],
            )
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def due_pairings(
        self, now: datetime, resend_after_s: float, limit: int = 100
    ) -> list[PairingEvent]:
        """Pairing events not yet receipted, oldest first, when it is time to send them: none
        while some were sent less than `resend_after_s` ago and are still waiting for their
        receipt (so a newer event never reaches ingest before an older one), else all.

        Raises:
            sqlite3.Error: the query failed.
        """
        with self._lock:
            in_flight = self._conn.execute(
                "SELECT 1 FROM pairing_events WHERE forwarded_at_s IS NULL AND sent_at_s > ?"
                " LIMIT 1",
                (now.timestamp() - resend_after_s,),
            ).fetchone()
            if in_flight is not None:
                return []
            rows = self._conn.execute(
                "SELECT event_id, action, device_id, kind, patient_id, users, manufacturer,"
                " model, serial, firmware, paired_at_s, at_s FROM pairing_events"
                " WHERE forwarded_at_s IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [_pairing_event(row) for row in rows]

    def mark_pairings_sent(self, event_ids: Iterable[str], now: datetime) -> None:
        """Record that these pairing events were just sent (resent later unless receipted)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE pairing_events SET sent_at_s = ? WHERE event_id = ?",
                [(now.timestamp(), i) for i in event_ids],
            )
            self._conn.execute("COMMIT")

    def mark_pairings_forwarded(self, event_ids: Iterable[str], now: datetime) -> int:
        """Record ingest's receipt for pairing events; returns how many were new."""
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE pairing_events SET forwarded_at_s = ?"
                " WHERE event_id = ? AND forwarded_at_s IS NULL",
                [(now.timestamp(), i) for i in event_ids],
            )
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def pending_pairings(self) -> int:
        """Pairing events the server has not receipted yet."""
        with self._lock:
            row = self._conn.execute(
                "SELECT count(*) FROM pairing_events WHERE forwarded_at_s IS NULL"
            ).fetchone()
        return int(row[0])

    def prune(self, now: datetime, retention_s: float) -> tuple[int, int]:
        """Delete readings retired, and packets and pairing events forwarded, more than
        `retention_s` ago.

        Pending readings, unforwarded packets and pairing events are never touched. Returns
        (readings, packets) deleted.

        Raises:
            sqlite3.Error: the delete failed (nothing was deleted).
        """
        cutoff = now.timestamp() - retention_s
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            readings = self._conn.execute(
                "DELETE FROM readings WHERE state = 'retired' AND retired_at_s < ?", (cutoff,)
            ).rowcount
            packets = self._conn.execute(
                "DELETE FROM quarantine WHERE forwarded_at_s IS NOT NULL AND forwarded_at_s < ?",
                (cutoff,),
            ).rowcount
            self._conn.execute(
                "DELETE FROM pairing_events WHERE forwarded_at_s IS NOT NULL"
                " AND forwarded_at_s < ?",
                (cutoff,),
            )
            self._conn.execute("COMMIT")
        return readings, packets

    def make_all_due(self, now: datetime) -> None:
        """Make every pending reading (and unforwarded packet and pairing event) due now (after
        a (re)connection to the broker, or when ingest announces itself)."""
        with self._lock:
            for table in ("quarantine", "pairing_events"):
                self._conn.execute(
                    f"UPDATE {table} SET sent_at_s = NULL"  # noqa: S608 - our table names
                    " WHERE forwarded_at_s IS NULL AND sent_at_s IS NOT NULL"
                )
            self._conn.execute(
                "UPDATE readings SET next_attempt_s = ? WHERE state = 'pending'"
                " AND next_attempt_s > ?",
                (now.timestamp(), now.timestamp()),
            )

    def retire(self, committed: Iterable[str], quarantined: Iterable[str], now: datetime) -> int:
        """Retire readings named by an end-to-end receipt; returns how many were pending.

        Raises:
            sqlite3.Error: the update failed (the receipt will be re-earned by a resend).
        """
        now_s = now.timestamp()
        params = [(now_s, "committed", i) for i in committed]
        params += [(now_s, "quarantined", i) for i in quarantined]
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE readings SET state = 'retired', retired_at_s = ?, retired_as = ?"
                " WHERE reading_id = ? AND state = 'pending'",
                params,
            )
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def state_of(self, reading_id: str) -> str | None:
        """'pending', 'retired' or None (unknown)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM readings WHERE reading_id = ?", (reading_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def reading_ids(self, device_id: str | None = None) -> list[str]:
        """Every reading id the outbox holds (pending and retired), optionally for one device."""
        with self._lock:
            if device_id is None:
                rows = self._conn.execute("SELECT reading_id FROM readings").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT reading_id FROM readings WHERE device_id = ?", (device_id,)
                ).fetchall()
        return [str(r[0]) for r in rows]

    def latest(self, device_id: str, limit: int) -> list[Reading]:
        """The device's most recently measured readings (for the pairing page)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT payload FROM readings WHERE device_id = ?"
                " ORDER BY json_extract(payload, '$.measured_at') DESC LIMIT ?",
                (device_id, limit),
            ).fetchall()
        return [reading_from_json(json.loads(row[0])) for row in rows]

    def quarantined(self, device_id: str | None = None) -> list[QuarantinedPacket]:
        """Packets kept in quarantine, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT characteristic, raw, reason, received_at_s FROM quarantine"
                " WHERE ? IS NULL OR device_id = ? ORDER BY id",
                (device_id, device_id),
            ).fetchall()
        return [
            QuarantinedPacket(str(c), bytes(r), str(why), datetime.fromtimestamp(t, UTC))
            for c, r, why, t in rows
        ]

    def stats(self, now: datetime) -> OutboxStats:
        """Pending/retired/quarantined counts and the age of the oldest pending reading."""
        with self._lock:
            pending, oldest = self._conn.execute(
                "SELECT count(*), min(stored_at_s) FROM readings WHERE state = 'pending'"
            ).fetchone()
            retired = self._conn.execute(
                "SELECT count(*) FROM readings WHERE state = 'retired'"
            ).fetchone()[0]
            quarantined = self._conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        age = None if oldest is None else max(0.0, now.timestamp() - float(oldest))
        return OutboxStats(int(pending), int(retired), int(quarantined), age)


def _pairing_event(row: tuple[Any, ...]) -> PairingEvent:
    """A `pairing_events` row (the columns `due_pairings` selects) as the wire's event."""
    event_id, action, device_id, kind, patient_id = (str(v) for v in row[:5])
    manufacturer, model, serial, firmware, paired_at_s, at_s = row[6:]
    return PairingEvent(
        event_id,
        action,
        device_id,
        kind,
        patient_id,
        tuple((int(i), str(p)) for i, p in json.loads(row[5] or "[]")),
        manufacturer,
        model,
        serial,
        firmware,
        paired_at=datetime.fromtimestamp(paired_at_s, UTC),
        at=datetime.fromtimestamp(at_s, UTC),
    )
