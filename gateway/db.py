"""The gateway's SQLite file: one place that opens connections, so every one of them is durable.

`synchronous` is a per-connection setting that SQLite does not store in the file
(sqlite.org "PRAGMA synchronous"; docs/reliability.md): WAL alone survives a process crash but may
roll back the last commits on power loss, so every connection sets WAL *and* `synchronous=FULL`, and
`durability()` reports what a connection really runs with (a test asserts it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    reading_id      TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    payload         TEXT NOT NULL,          -- reading_to_json, exactly what is published
    state           TEXT NOT NULL CHECK (state IN ('pending', 'retired')),
    stored_at_s     REAL NOT NULL,          -- gateway UTC epoch seconds
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_s  REAL NOT NULL,
    retired_at_s    REAL,
    retired_as      TEXT CHECK (retired_as IN ('committed', 'quarantined'))
);
CREATE INDEX IF NOT EXISTS readings_due ON readings (state, next_attempt_s);
CREATE INDEX IF NOT EXISTS readings_device ON readings (device_id, stored_at_s);
CREATE TABLE IF NOT EXISTS cursors (
    device_id          TEXT PRIMARY KEY,
    last_sequence      INTEGER,
    last_device_time   TEXT,
    updated_at_s       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id       TEXT NOT NULL,
    characteristic  TEXT NOT NULL,
    raw             BLOB NOT NULL,
    reason          TEXT NOT NULL,
    received_at_s   REAL NOT NULL,
    sent_at_s       REAL,                   -- last forwarded to ingest (hv/v1/gw/+/quarantine)
    forwarded_at_s  REAL                    -- ingest's receipt named it: kept server-side
);
CREATE TABLE IF NOT EXISTS samples (       -- raw stream samples, kept `sample_retention_s`
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at_s            REAL NOT NULL,          -- hub UTC receive time
    minute_s        INTEGER NOT NULL,       -- start of its UTC minute
    sample_values   TEXT NOT NULL,          -- JSON [[name, value], ...]
    summarized      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_open ON samples (summarized, minute_s);
CREATE INDEX IF NOT EXISTS samples_age ON samples (at_s);
CREATE TABLE IF NOT EXISTS sample_batches (  -- a minute's raw samples for the time series
    batch_id        TEXT PRIMARY KEY,       -- devices.sample_wire.sample_batch_id
    minute_s        INTEGER NOT NULL,
    payload         TEXT NOT NULL,          -- the batch's hv.samples/1 JSON
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_s       REAL NOT NULL,          -- when it is due (again)
    forwarded_at_s  REAL                    -- ingest's receipt named it
);
CREATE INDEX IF NOT EXISTS sample_batches_due ON sample_batches (forwarded_at_s, next_at_s);
CREATE TABLE IF NOT EXISTS stream_owners (  -- whose stream a device's samples are
    device_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    device          TEXT NOT NULL,          -- JSON of the DeviceInfo
    PRIMARY KEY (device_id, kind)
);
CREATE TABLE IF NOT EXISTS devices (
    device_id       TEXT PRIMARY KEY,
    address         TEXT NOT NULL,
    name            TEXT,
    kind            TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    manufacturer    TEXT,
    model           TEXT,
    serial          TEXT,
    firmware        TEXT,
    paired_at_s     REAL NOT NULL,
    last_sync_at_s  REAL,
    last_outcome    TEXT,
    users           TEXT                    -- JSON [[user index, patient id], ...] of a shared cuff
);
"""


def connect(path: Path, *, max_size_bytes: int | None = None) -> sqlite3.Connection:
    """Open the gateway database with WAL and `synchronous=FULL`, creating the schema.

    `max_size_bytes` caps the file (SQLite then fails writes with SQLITE_FULL, exactly as a full
    disk does), so an outbox cannot eat the hub's whole disk during a long outage.

    Raises:
        sqlite3.Error: the file cannot be opened or is not a database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    _add_missing_columns(conn)
    _add_pairing_events(conn)
    if max_size_bytes is not None:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count={max(1, max_size_bytes // page_size)}")
    return conn


# Columns added after the first release, for files created before them (CREATE TABLE IF NOT
# EXISTS leaves an existing table as it is).
_ADDED_COLUMNS: Final = (
    ("quarantine", "sent_at_s", "REAL"),
    ("quarantine", "forwarded_at_s", "REAL"),
    ("devices", "users", "TEXT"),
)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        have = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


# Pairings and unpairings, kept until ingest's receipt names them (`Registry` writes one in the
# transaction of each change; `Outbox.due_pairings` forwards them, oldest first).
PAIRING_EVENTS: Final = """
CREATE TABLE pairing_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order they happened in
    event_id        TEXT NOT NULL UNIQUE,
    action          TEXT NOT NULL CHECK (action IN ('pair', 'unpair')),
    device_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    users           TEXT,                   -- JSON [[user index, patient id], ...]
    manufacturer    TEXT,
    model           TEXT,
    serial          TEXT,
    firmware        TEXT,
    paired_at_s     REAL NOT NULL,
    at_s            REAL NOT NULL,
    sent_at_s       REAL,                   -- last forwarded to ingest (hv/v1/gw/+/pairings)
    forwarded_at_s  REAL                    -- ingest's receipt named it
)
"""


def _add_pairing_events(conn: sqlite3.Connection) -> None:
    """Create the pairing log; a hub that paired devices before it existed reports each of
    them once as paired (so the server's device registry learns of them)."""
    exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pairing_events'"
    if conn.execute(exists).fetchone() is not None:
        return
    with transaction(conn):
        if conn.execute(exists).fetchone() is None:  # another connection may have won
            conn.execute(PAIRING_EVENTS)
            conn.execute(
                "INSERT INTO pairing_events (event_id, action, device_id, kind, patient_id,"
                " users, manufacturer, model, serial, firmware, paired_at_s, at_s)"
                " SELECT lower(hex(randomblob(16))), 'pair', device_id, kind, patient_id, users,"
                " manufacturer, model, serial, firmware, paired_at_s, paired_at_s FROM devices"
                " ORDER BY paired_at_s, device_id"
            )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection; ROLLBACK when anything fails
    (the commit included).

    Raises:
        sqlite3.Error: a statement or the commit failed; nothing was written.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def durability(conn: sqlite3.Connection) -> tuple[str, int]:
    """Return (journal_mode, synchronous) as this connection really runs them (FULL is 2)."""
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    sync = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    return mode, sync


def is_disk_full(exc: sqlite3.Error) -> bool:
    """True when SQLite failed because the disk (or the size cap) is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
