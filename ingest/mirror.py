"""The time-series mirror: stored readings to an InfluxDB-protocol server, from a cursor.

The cursor (`mirror_cursors.last_id`) is the last `readings.id` the server has accepted. One
step locks the cursor row, reads the next readings in id (commit) order, writes them as line
protocol with influxdb-client's synchronous write API (a 2xx means written; the
default batching API answers before writing: docs/reliability.md) and only then moves the cursor, in
the same transaction. If the server is down the transaction rolls back and the step is retried
later: an outage delays, never loses. Several ingest processes may run a mirror; on PostgreSQL the
row lock (``SKIP LOCKED``) lets one of them work at a time, so points are not written twice.

Without a time-series server (the single-machine demo) the same line protocol can go to a local
file (`FileLineWriter`, ``HV_INGEST_TSDB_URL=file:///path/points.lp``), fsynced before the
cursor moves; ``influx write --file`` imports it later.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from ingest import schema
from ingest.errors import MirrorError
from ingest.points import StoredReading, lines_for

log = logging.getLogger(__name__)
LineWriter = Callable[[Sequence[str]], None]


class InfluxLineWriter:
    """Writes pre-formatted line protocol through influxdb-client, synchronously."""

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_ms: int = 10_000):
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=timeout_ms)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._org = org
        self._bucket = bucket

    def __call__(self, lines: Sequence[str]) -> None:
        """Write lines (precision ms).

        Raises:
            MirrorError: the server answered other than 2xx or could not be reached.
        """
        try:
            self._api.write(
                self._bucket,
                self._org,
                record="\n".join(lines),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            status = exc.status
            raise MirrorError(f"time-series server refused a batch: {status}", status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise MirrorError(f"time-series server unreachable: {exc}", None) from exc

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()  # type: ignore[no-untyped-call]


class FileLineWriter:
    """Appends line protocol to a local file; a return means the lines are on disk (fsync).

    A crash between the write and the cursor's commit writes those lines again on the retry:
    the same series and timestamp, which a time-series server importing the file keeps once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_url(cls, url: str) -> FileLineWriter:
        """A writer for a ``file:///absolute/path`` URL.

        Raises:
            MirrorError: not a ``file://`` URL with an absolute path.
        """
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parts.path)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not path:
            raise MirrorError(f"not a file:// URL with an absolute path: {url!r}", None)
        return cls(Path(path))

    def __call__(self, lines: Sequence[str]) -> None:
        """Append the lines (one point each) and fsync.

        Raises:
            MirrorError: the file could not be written.
        """
        try:
            with self.path.open("a", encoding="utf-8") as out:
                out.write("".join(f"{line}\n" for line in lines))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise MirrorError(f"time-series file not written: {exc}", None) from exc

    def close(self) -> None:
        """Nothing stays open between writes."""


def _cursor(conn: sa.Connection, name: str, now: datetime) -> int | None:
    """Lock the cursor row and return its value (None: another mirror holds it)."""
    c = schema.mirror_cursors
    if conn.dialect.name == "sqlite":
        # Take SQLite's write lock before reading: a read transaction that tries to write after
        # another writer committed fails (SQLITE_BUSY_SNAPSHOT), which would come after the
        # points were sent and make the retry send them twice.
        conn.execute(sa.update(c).where(c.c.name == name).values(updated_at=now))
    exists = conn.execute(sa.select(c.c.last_id).where(c.c.name == name)).first()
    if exists is None:
        conn.execute(sa.insert(c).values(name=name, last_id=0, updated_at=now))
    query = sa.select(c.c.last_id).where(c.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def mirror_step(
    engine: sa.Engine, write: LineWriter, *, name: str, limit: int, now: datetime
) -> int:
    """Mirror up to `limit` readings after the cursor; return how many the cursor moved over.

    Raises:
        MirrorError: the server did not take the batch (the cursor did not move).
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read or updated.
    """
    r = schema.readings.c
    with engine.begin() as conn:
        last_id = _cursor(conn, name, now)
        if last_id is None:
            return 0
        rows = conn.execute(
            sa.select(r.id, r.kind, r.patient_id, r.device_id, r.measured_at, r["values"])
            .where(r.id > last_id)
            .order_by(r.id)
            .limit(limit)
        ).all()
        if not rows:
            return 0
        lines, skipped = lines_for(
            StoredReading(row[0], row[1], row[2], row[3], row[4], row[5]) for row in rows
        )
        if lines:
            write(lines)
        if skipped:
            log.debug("mirror %s: %d readings had no numeric value", name, skipped)
        conn.execute(
            sa.update(schema.mirror_cursors)
            .where(schema.mirror_cursors.c.name == name)
            .values(last_id=rows[-1][0], updated_at=now)
        )
    return len(rows)


def cursor_position(engine: sa.Engine, name: str) -> int:
    """Return the cursor's value (0 if the mirror never ran).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read.
    """
    c = schema.mirror_cursors
    with engine.connect() as conn:
        value = conn.execute(sa.select(c.c.last_id).where(c.c.name == name)).scalar()
    return 0 if value is None else int(value)


def run_mirror(
    engine: sa.Engine,
    write: LineWriter,
    stop: threading.Event,
    *,
    name: str,
    limit: int,
    idle_s: float,
    clock: Callable[[], datetime],
) -> None:
    """Mirror until `stop` is set, backing off while the server or the store is unavailable."""
    backoff_s = idle_s
    while not stop.is_set():
        try:
            moved = mirror_step(engine, write, name=name, limit=limit, now=clock())
        except MirrorError as exc:
            log.warning("mirror %s: %s (retrying in %.1f s)", name, exc, backoff_s)
            stop.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)
            continue
        except sa.exc.SQLAlchemyError as exc:
            log.error("mirror %s: record store error: %s", name, exc)
            stop.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)
            continue
        backoff_s = idle_s
        if moved < limit:
            stop.wait(idle_s)
