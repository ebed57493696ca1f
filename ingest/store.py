"""The record store adapter: engines, migrations and the one write transaction per batch.

SQLite (the embedded default) gets WAL and ``synchronous=FULL`` on every connection, because
``synchronous`` is a per-connection setting that is not stored in the file (sqlite.org
"PRAGMA synchronous"; docs/reliability.md). PostgreSQL is used for deployments and the test suite.

Writers serialise their transactions (a transaction-scoped advisory lock on PostgreSQL, the
database write lock on SQLite), so `readings.id` values become visible in increasing order and
"every row after id N" is a cursor that never skips a row committed later by another process.
The parallel part of ingest (decoding, validation, the COPY text) stays outside the lock; ids
are drawn only once it is held.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from psycopg._copy_base import TextFormatter  # the C row formatter Copy uses
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from careteam import db as record_db
from careteam import migrations as record_migrations
from careteam.errors import InvalidFieldError
from devices.reading import Reading
from devices.wire import readings_topic
from ingest import schema
from ingest.conflicts import CONTENT_COLUMNS, conflict_item, content_of, differing_columns
from ingest.errors import StoreError
from ingest.rows import (
    COPY_COLUMNS,
    CopyRows,
    QuarantineItem,
    device_rows,
    patient_rows,
    quarantine_row,
    reading_row,
)

if TYPE_CHECKING:
    from ingest.hub_facts import HubUpdates

# pg_advisory_xact_lock key for "a batch is being written" ("hvingest" in ASCII, truncated).
WRITE_LOCK_KEY = 0x6876696E67657374 & 0x7FFF_FFFF_FFFF_FFFF
MIGRATE_LOCK_KEY = WRITE_LOCK_KEY - 1
CHUNK_ROWS = 500
MIGRATIONS = Path(__file__).parent / "migrations"

StepHook = Callable[[str], None]


def make_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """Create an engine for `url`; SQLite connections get WAL and synchronous=FULL.

    The record's `careteam.db.make_engine`, with its error translated.

    Raises:
        StoreError: the URL is not a usable database URL.
    """
    try:
        return record_db.make_engine(url, pool_size=pool_size)
    except InvalidFieldError as exc:
        raise StoreError(exc.reason) from exc


def migrate(url: str) -> None:
    """Upgrade the ingest tables of the database at `url` to the newest revision.

    The care-team record's tables (enrolment, which ingest checks) are upgraded first. Safe
    to call from several processes at once on PostgreSQL (an advisory lock serialises them);
    idempotent.

    Raises:
        StoreError: the database could not be reached or a migration failed.
    """
    engine = make_engine(url, pool_size=1)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        record_migrations.migrate(engine)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK_KEY)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {exc}") from exc
    finally:
        engine.dispose()


class HeldConnection:
    """One connection kept across batches (the consumer's writer and its enrolment look-ups).

    Checking a connection out of the pool for every batch costs a pre-ping (a ``SELECT 1``
    round trip) each time; a held connection is checked out once. A connection that failed is
    `discard`ed (invalidated, so the pool does not hand it out again) and the next `get` checks
    out a new one: a dead connection is found by the failure of the batch, which is retried.
    `autocommit` connections run each statement on its own (a read costs one round trip, with
    no BEGIN and no ROLLBACK around it).
    """

    def __init__(self, engine: sa.Engine, *, autocommit: bool = False) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._conn: sa.Connection | None = None

    def get(self) -> sa.Connection:
        """The held connection, checked out now if there is none.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database cannot be reached.
        """
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            conn = self._engine.connect()
            if self._autocommit:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        return self._conn

    def discard(self) -> None:
        """Drop the held connection after a failure (never returned to the pool)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError, psycopg.Error):
                conn.invalidate()
            with contextlib.suppress(SQLAlchemyError, psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Return the held connection to the pool (at shutdown)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError, psycopg.Error):
                conn.close()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed batch did: ids newly inserted, quarantine rows added, conflicts.

    `conflicts` are ids under which a reading with different content arrived (see
    `ingest.conflicts`): the stored version stays, the received one is in quarantine.
    """

    inserted_ids: frozenset[str]
    quarantined_new: int
    conflicts: frozenset[str] = frozenset()


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which has `on_conflict_do_nothing` (PostgreSQL, SQLite).

    Raises:
        StoreError: the connection's database is neither PostgreSQL nor SQLite.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"unsupported database dialect {conn.dialect.name!r}", retry_after_s=60)


_PG_COLUMNS: Final = tuple(c.name for c in schema.readings.columns if c.name != "id")
if set(_PG_COLUMNS) != set(COPY_COLUMNS):  # a column added to one and not the other
    raise RuntimeError(f"ingest.rows.COPY_COLUMNS {COPY_COLUMNS} != readings {_PG_COLUMNS}")
_NAMES: Final = ", ".join(f'"{name}"' for name in COPY_COLUMNS)
# PostgreSQL fast path: COPY the rows (formatted by psycopg in C) straight into `readings` after
# a savepoint. When an id is stored already the COPY fails as a whole and is rolled back to the
# savepoint; then the rows go into a per-connection temporary table, and one INSERT ... SELECT
# with ON CONFLICT moves the new ones into `readings`. Both are several times faster than
# multi-row INSERT statements. Only our own column names are formatted into the SQL; the data
# travels through COPY.
_PG_COPY_READINGS: Final = f"COPY readings ({_NAMES}) FROM STDIN"
_PG_SAVEPOINT: Final = "SAVEPOINT hv_ingest_copy"
_PG_ROLLBACK_TO: Final = "ROLLBACK TO SAVEPOINT hv_ingest_copy"
_STAGE_SELECT: Final = f"SELECT {_NAMES} FROM readings WITH NO DATA"  # noqa: S608
_PG_STAGE: Final = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS readings_stage ON COMMIT DELETE ROWS AS " + _STAGE_SELECT
)
_PG_COPY: Final = f"COPY readings_stage ({_NAMES}) FROM STDIN"
_PG_MOVE: Final = (
    f"INSERT INTO readings ({_NAMES}) SELECT {_NAMES} FROM readings_stage "  # noqa: S608
    "ON CONFLICT (reading_id) DO NOTHING RETURNING reading_id"
)


def _driver(conn: sa.Connection) -> psycopg.Connection[Any]:
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise StoreError("the database connection is closed or not psycopg")
    return driver


# Key in the pool's per-DBAPI-connection `info` (cleared when the connection is replaced): set
# once a transaction that created the session's staging table has committed, so later batches
# skip the CREATE (a round trip and a catalog look-up per batch).
_STAGE_READY: Final = "hv_ingest_readings_stage"


def _pg_stage(conn: sa.Connection, copy_data: bytes, *, create: bool) -> None:
    """COPY rows into this connection's staging table (private to the connection)."""
    try:
        with _driver(conn).cursor() as cursor:
            if create:
                cursor.execute(_PG_STAGE)
            with cursor.copy(_PG_COPY) as copy:
                copy.write(copy_data)
    except psycopg.Error as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc


def _pg_copy_readings(conn: sa.Connection, copy_data: bytes) -> bool:
    """COPY rows straight into `readings` after `_PG_SAVEPOINT` (the write lock held).

    True when every row went in. False when a `reading_id` was already stored (a redelivered or
    re-sent batch): the COPY is undone back to the savepoint and nothing of it stays; the caller
    then takes the staging path, whose ON CONFLICT keeps the stored rows.
    """
    driver = _driver(conn)
    try:
        try:
            with driver.cursor() as cursor, cursor.copy(_PG_COPY_READINGS) as copy:
                copy.write(copy_data)
        except psycopg.errors.UniqueViolation:
            driver.execute(_PG_ROLLBACK_TO)
            return False
    except psycopg.Error as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc
    return True


def stored_at_text(moment: datetime) -> str:
    """`moment` as the COPY text psycopg's own dumper makes of it (formatted once per batch)."""
    return bytes(_TEXT_DUMPERS.get_dumper(moment, PyFormat.TEXT).dump(moment) or b"").decode()


def copy_text(rows: Iterable[Sequence[object]]) -> bytes:
    """`rows` as COPY text data, formatted by psycopg's own (C) row formatter.

    The same bytes `Copy.write_row` sends for each row, made without a connection (text
    dumpers of str, int, float, bool, None and aware datetimes depend on no connection
    setting), so the consumer formats a batch in its validation stage while the previous batch
    commits, and the writer only streams it.
    """
    formatter = TextFormatter(Transformer())
    out = bytearray()
    for row in rows:
        out += formatter.write_row(row)
    out += formatter.end()
    return bytes(out)


_PG_LOCK: Final = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
_PG_PATIENTS: Final = (
    "INSERT INTO patients (patient_id, first_seen_at) VALUES (%s, %s) ON CONFLICT DO NOTHING"
)
_PG_DEVICES: Final = (
    "INSERT INTO devices (device_id, manufacturer, model, serial, firmware, first_seen_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def _pg_locked_writes(
    conn: sa.Connection, readings: Sequence[Reading], *, savepoint: bool, now: datetime
) -> None:
    """Take the write lock, add patients and devices and (`savepoint`) set the savepoint the
    direct COPY rolls back to, in one round trip (psycopg's pipeline mode: the statements are
    sent together and run in order)."""
    p_rows = [(r["patient_id"], r["first_seen_at"]) for r in patient_rows(readings, stored_at=now)]
    d_rows = [
        (r["device_id"], r["manufacturer"], r["model"], r["serial"], r["firmware"], now)
        for r in device_rows(readings, stored_at=now)
    ]
    driver = _driver(conn)
    try:
        with driver.cursor() as cursor, driver.pipeline():
            cursor.execute(_PG_LOCK)
            if p_rows:
                cursor.executemany(_PG_PATIENTS, p_rows)
                cursor.executemany(_PG_DEVICES, d_rows)
            if savepoint:
                cursor.execute(_PG_SAVEPOINT)
    except psycopg.Error as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc


def _pg_move(conn: sa.Connection) -> list[str]:
    """Move the staged rows into `readings` (ON CONFLICT: stored ids stay); the new ids."""
    try:
        with _driver(conn).cursor() as cursor:
            cursor.execute(_PG_MOVE)
            return [str(r[0]) for r in cursor.fetchall()]
    except psycopg.Error as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc


def _side_tables(
    conn: sa.Connection,
    readings: Iterable[Reading],
    quarantined: Sequence[QuarantineItem],
    now: datetime,
) -> int:
    """Write quarantine, patients and devices rows; return the new quarantine rows."""
    added = _quarantine_items(conn, quarantined, now) if quarantined else 0
    p_rows = patient_rows(readings, stored_at=now)
    if p_rows:
        conn.execute(dialect_insert(conn, schema.patients).on_conflict_do_nothing(), p_rows)
        d_rows = device_rows(readings, stored_at=now)
        conn.execute(dialect_insert(conn, schema.devices).on_conflict_do_nothing(), d_rows)
    return added


def _chunks(rows: Sequence[dict[str, object]], size: int) -> Iterable[Sequence[dict[str, object]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """Readings of one batch, deduplicated and mapped to rows, ready for `write_prepared`.

    `copy_data` (the rows as PostgreSQL COPY text, JSON already encoded) is filled only when
    the batch was prepared for PostgreSQL with psycopg. Preparing is CPU work that needs no
    connection, so the consumer does it while the previous batch commits.
    """

    readings: tuple[Reading, ...]
    stored_at: datetime
    copy_data: bytes | None
    conflicts: tuple[QuarantineItem, ...] = ()

    @property
    def rows(self) -> list[dict[str, object]]:
        """The readings as `readings` rows (the multi-row INSERT path; built on demand)."""
        return [reading_row(r, stored_at=self.stored_at) for r in self.readings]


_COPY_ROWS: Final = CopyRows()  # its caches are only read and extended under the GIL
_TEXT_DUMPERS: Final = Transformer()


def uses_copy(engine: sa.Engine) -> bool:
    """True when `engine` takes the PostgreSQL COPY fast path."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def prepare_batch(readings: Sequence[Reading], *, now: datetime, copy: bool) -> PreparedBatch:
    """Deduplicate readings by `reading_id` and map them to rows (and COPY rows if `copy`).

    A repeat of an id within the batch with different content is a conflict: the first version
    goes on, the repeat becomes a quarantine item (compared only when an id repeats).
    """
    unique: dict[str, Reading] = {}
    conflicts: list[QuarantineItem] = []
    for reading in readings:
        first = unique.setdefault(reading.reading_id, reading)
        if first is not reading:
            columns = differing_columns(content_of(first), reading)
            if columns:
                conflicts.append(
                    conflict_item(readings_topic(reading.gateway_id), reading, columns)
                )
    kept = tuple(unique.values())
    copy_data = None
    if copy:
        row, stored_at = _COPY_ROWS.row, stored_at_text(now)
        copy_data = copy_text([row(r, stored_at=stored_at) for r in kept])
    return PreparedBatch(kept, now, copy_data, tuple(conflicts))


def _stored_conflicts(conn: sa.Connection, existing: Sequence[Reading]) -> list[QuarantineItem]:
    """Compare readings whose id was already stored with the stored rows (the ON CONFLICT path)."""
    items: list[QuarantineItem] = []
    columns = [schema.readings.c.reading_id, *(schema.readings.c[c] for c in CONTENT_COLUMNS)]
    for start in range(0, len(existing), CHUNK_ROWS):
        chunk = {r.reading_id: r for r in existing[start : start + CHUNK_ROWS]}
        query = sa.select(*columns).where(schema.readings.c.reading_id.in_(list(chunk)))
        for stored in conn.execute(query).mappings():
            reading = chunk[stored["reading_id"]]
            differing = differing_columns(dict(stored), reading)
            if differing:
                items.append(conflict_item(readings_topic(reading.gateway_id), reading, differing))
    return items


def _quarantine_items(conn: sa.Connection, items: Sequence[QuarantineItem], now: datetime) -> int:
    """Keep quarantine items (a redelivered one lands once: digest); return the rows added."""
    rows = [quarantine_row(item, received_at=now) for item in items]
    stmt = dialect_insert(conn, schema.quarantine).on_conflict_do_nothing(index_elements=["digest"])
    return len(conn.execute(stmt.returning(schema.quarantine.c.id), rows).all())


def write_batch(
    engine: sa.Engine,
    readings: Sequence[Reading],
    quarantined: Sequence[QuarantineItem],
    *,
    now: datetime,
    hook: StepHook | None = None,
) -> WriteResult:
    """Commit validated readings and quarantined items in one transaction.

    Same as `write_prepared` on `prepare_batch(readings, ...)`.

    Raises:
        StoreError: the transaction failed and was rolled back; nothing of the batch is stored.
    """
    prepared = prepare_batch(readings, now=now, copy=uses_copy(engine))
    return write_prepared(engine, prepared, quarantined, now=now, hook=hook)


def write_prepared(
    engine: sa.Engine,
    prepared: PreparedBatch,
    quarantined: Sequence[QuarantineItem],
    *,
    now: datetime,
    hook: StepHook | None = None,
    hub: HubUpdates | None = None,
) -> WriteResult:
    """Commit a prepared batch on a connection of `engine`'s pool (see `write_on`).

    Raises:
        StoreError: the transaction failed and was rolled back; nothing of the batch is stored.
    """
    try:
        with engine.connect() as conn:
            return write_on(conn, prepared, quarantined, now=now, hook=hook, hub=hub)
    except SQLAlchemyError as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc


def write_on(
    conn: sa.Connection,
    prepared: PreparedBatch,
    quarantined: Sequence[QuarantineItem],
    *,
    now: datetime,
    hook: StepHook | None = None,
    hub: HubUpdates | None = None,
) -> WriteResult:
    """Commit a prepared batch of readings and quarantined items in one transaction on `conn`.

    Readings already stored (same `reading_id`) are left as they are (`ON CONFLICT DO
    NOTHING`), so a redelivered or re-sent batch changes nothing; only those are compared with
    the stored rows, and one with different content is quarantined as a conflict. `hook`, when
    given, is called with ``"mid_batch"`` once part of the batch is written in the open
    transaction (on PostgreSQL the readings moved under the lock, elsewhere the first chunk
    inserted) and ``"before_commit"`` after the last statement (fault-injection points for the
    tests).

    On PostgreSQL with psycopg a batch of new readings costs four round trips: one pipeline
    (BEGIN, the write lock, patients, devices, a savepoint), the COPY of the rows straight into
    `readings` (two) and the commit; the rows are written once. When an id of the batch is
    stored already (a redelivery, a resend), the COPY fails on the unique `reading_id`, is rolled
    back to the savepoint, and the rows take the staging path: COPY into the connection's
    temporary table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` that keeps the
    stored rows and returns the new ids. The consumer keeps one connection for its writes, so no
    pool check-out (and no pre-ping) precedes a batch: a dead connection shows as a failed
    batch, which is retried on a new one.

    Raises:
        StoreError: the transaction failed and was rolled back; nothing of the batch is stored.
    """
    inserted: set[str] = set()
    staged_on: dict[Any, Any] | None = None
    try:
        with conn.begin():
            fast = (
                prepared.copy_data is not None
                and conn.dialect.name == "postgresql"
                and conn.dialect.driver == "psycopg"
                # copy_data is UTF-8 (formatted without a connection); another client
                # encoding takes the generic path
                and _driver(conn).info.encoding == "utf-8"
            )
            if fast and prepared.copy_data is not None:
                rows = bool(prepared.readings)
                _pg_locked_writes(conn, prepared.readings, savepoint=rows, now=now)
                if rows and _pg_copy_readings(conn, prepared.copy_data):
                    inserted.update(r.reading_id for r in prepared.readings)
                elif rows:  # some id is stored already: staging table, then ON CONFLICT
                    staged_on = conn.connection.info
                    create = not staged_on.get(_STAGE_READY, False)
                    _pg_stage(conn, prepared.copy_data, create=create)
                    inserted.update(_pg_move(conn))
                if rows and hook is not None:
                    hook("mid_batch")
                quarantined_new = _quarantine_items(conn, quarantined, now) if quarantined else 0
            else:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
                quarantined_new = _side_tables(conn, prepared.readings, quarantined, now)
                stmt = dialect_insert(conn, schema.readings).on_conflict_do_nothing(
                    index_elements=["reading_id"]
                )
                for number, chunk in enumerate(_chunks(prepared.rows, CHUNK_ROWS)):
                    result = conn.execute(stmt.returning(schema.readings.c.reading_id), chunk)
                    inserted.update(result.scalars().all())
                    if number == 0 and hook is not None:
                        hook("mid_batch")
            conflicts = list(prepared.conflicts)
            if len(inserted) < len(prepared.readings):  # some ids existed: compare only those
                existing = [r for r in prepared.readings if r.reading_id not in inserted]
                conflicts += _stored_conflicts(conn, existing)
            if conflicts:
                quarantined_new += _quarantine_items(conn, conflicts, now)
            if hub:
                from ingest.hub_facts import write_hub_updates  # noqa: PLC0415 (it uses us)

                write_hub_updates(conn, hub, now)
            if hook is not None:
                hook("before_commit")
    except SQLAlchemyError as exc:
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc
    except psycopg.Error as exc:  # the commit itself, on the driver's connection
        raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc
    if staged_on is not None:  # committed: the staging table outlives this transaction
        staged_on[_STAGE_READY] = True
    conflict_ids = frozenset(item.reading_id for item in conflicts if item.reading_id)
    return WriteResult(frozenset(inserted), quarantined_new, conflict_ids)
