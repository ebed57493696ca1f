"""The engine's persistence: migrations, open episodes, and the one transaction per evaluation.

`apply_changes` writes the alert rows, their history, the `AlertEvent`s (own table, UNIQUE
event id) and the engine cursor, and hands the events to the injected sink, all inside the
caller's transaction: either all of an evaluation is stored, or none of it, so a crash
re-evaluates the same readings and derives the same alert ids (nothing doubled, nothing lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from alerts.engine import tables
from alerts.engine.episodes import Change, OpenEpisode
from alerts.engine.errors import StoreError
from alerts.events import AlertEvent, EventType, Priority, event_id_for
from ingest.errors import StoreError as IngestStoreError
from ingest.store import make_engine as ingest_engine

MIGRATIONS: Final = Path(__file__).parents[1] / "migrations"
# pg_advisory_xact_lock keys ("hvalerts" in ASCII, truncated to a positive bigint).
MIGRATE_LOCK_KEY: Final = 0x6876616C65727473 & 0x7FFF_FFFF_FFFF_FFFF
ENGINE_LOCK_KEY: Final = MIGRATE_LOCK_KEY - 1
DEFAULT_ENGINE: Final = "rules"

EventSink = Callable[[sa.Connection, Sequence[AlertEvent]], None]
Failpoint = Callable[[str], None]


def make_engine(url: str) -> sa.Engine:
    """An engine for `url` (SQLite connections get WAL and synchronous=FULL via ingest's).

    Raises:
        StoreError: the URL is not a usable database URL.
    """
    try:
        return ingest_engine(url, pool_size=2)
    except IngestStoreError as exc:
        raise StoreError(str(exc)) from exc


def migrate(url: str) -> None:
    """Upgrade the rules engine's tables at `url` to the newest revision (idempotent).

    Raises:
        StoreError: the database could not be reached or a migration failed.
    """
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK_KEY)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"alerts migration failed: {exc}") from exc
    finally:
        engine.dispose()


def lock_engine(conn: sa.Connection) -> None:
    """Serialise evaluations: one engine instance writes at a time (PostgreSQL advisory lock;
    SQLite serialises writers itself)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ENGINE_LOCK_KEY)))


def read_cursor(conn: sa.Connection, name: str = DEFAULT_ENGINE) -> int:
    """The last `readings.id` evaluated by engine `name` (0 before the first evaluation)."""
    c = tables.alert_engine_cursor.c
    value = conn.execute(sa.select(c.last_reading_id).where(c.name == name)).scalar()
    return int(value) if value is not None else 0


def open_episodes(
    conn: sa.Connection, patient_ids: Sequence[str] | None = None
) -> list[OpenEpisode]:
    """The open episodes (of the given patients only, when `patient_ids` is given)."""
    a = tables.alerts.c
    query = sa.select(
        a.alert_id, a.patient_id, a.rule_id, a.subject, a.revision, a.anchor_reading_id,
        a.last_reading_id, a.priority, a.severity, a.notified_at, a.notified_priority,
        a.notified_severity,
    ).where(a.status == "open")  # fmt: skip
    if patient_ids is None:
        return [_episode(row) for row in conn.execute(query)]
    out: list[OpenEpisode] = []
    ids = sorted(set(patient_ids))
    for start in range(0, len(ids), 1000):
        chunk = query.where(a.patient_id.in_(ids[start : start + 1000]))
        out += [_episode(row) for row in conn.execute(chunk)]
    return out


def _epoch_s(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive datetimes; the store holds UTC only
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _episode(row: sa.Row[tuple[object, ...]]) -> OpenEpisode:
    (alert_id, patient_id, rule_id, subject, revision, anchor, last, priority, severity,
     notified_at, notified_priority, notified_severity) = row  # fmt: skip
    return OpenEpisode(
        str(alert_id),
        str(patient_id),
        str(rule_id),
        str(subject),
        int(revision),
        str(anchor),
        str(last),
        Priority(priority),
        None if severity is None else float(severity),
        _epoch_s(notified_at),
        None if notified_priority is None else Priority(notified_priority),
        None if notified_severity is None else float(notified_severity),
    )


def existing_alert_ids(conn: sa.Connection, alert_ids: Iterable[str]) -> frozenset[str]:
    """Which of `alert_ids` the store holds (any status)."""
    ids = sorted(set(alert_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        query = sa.select(tables.alerts.c.alert_id).where(tables.alerts.c.alert_id.in_(chunk))
        found.update(conn.execute(query).scalars())
    return frozenset(found)


def event_for(change: Change, now: datetime) -> AlertEvent:
    """The `AlertEvent` of one change (deterministic id: type, alert, revision)."""
    return AlertEvent(
        event_id=event_id_for(change.type, change.alert_id, change.revision),
        type=change.type,
        occurred_at=now,
        patient_id=change.patient_id,
        alert_id=change.alert_id,
        rule_id=change.rule_id,
        priority=change.priority,
        revision=change.revision,
    )


def record_events(
    conn: sa.Connection, events: Sequence[AlertEvent], sink: EventSink | None
) -> None:
    """Keep `events` in `alert_events` and hand them to the delivery sink, in the caller's
    transaction (also for events that are not alert revisions, such as `gateway.offline`).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a statement.
    """
    if not events:
        return
    conn.execute(tables.alert_events.insert(), [
        {"event_id": e.event_id, "type": e.type.value, "occurred_at": e.occurred_at,
         "patient_id": e.patient_id, "alert_id": e.alert_id, "rule_id": e.rule_id,
         "priority": e.priority.value if e.priority else None, "revision": e.revision}
        for e in events
    ])  # fmt: skip
    if sink is not None:
        sink(conn, events)


def apply_changes(
    conn: sa.Connection,
    changes: Sequence[Change],
    *,
    now: datetime,
    cursor: int,
    sink: EventSink | None = None,
    failpoint: Failpoint | None = None,
    name: str = DEFAULT_ENGINE,
    commit_cursor: Callable[[sa.Connection], None] | None = None,
) -> list[AlertEvent]:
    """Persist `changes` (every revision), the events of those to push (`Change.notify`) and
    the cursor in the caller's transaction; the pushed events go to `sink` too.

    The cursor is `commit_cursor(conn)` when given (a scale-out worker's per-partition
    cursors), else engine `name`'s row in `alert_engine_cursor` set to `cursor`.

    `failpoint`, when given, is called with "after_alerts" once the alert rows are written and
    "before_commit" after the last statement (fault injection for the crash tests).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a statement (the caller's
            transaction is then rolled back).
    """
    a = tables.alerts
    for ch in changes:
        push_state = {
            "priority": ch.priority.value,
            "severity": ch.severity,
            "notified_at": None
            if ch.notified_at_s is None
            else datetime.fromtimestamp(ch.notified_at_s, tz=UTC),
            "notified_priority": ch.notified_priority.value if ch.notified_priority else None,
            "notified_severity": ch.notified_severity,
        }
        if ch.type == EventType.ALERT_OPENED:
            conn.execute(a.insert().values(
                alert_id=ch.alert_id, patient_id=ch.patient_id, rule_id=ch.rule_id,
                rule_version=ch.rule_version, subject=ch.subject, status="open",
                revision=ch.revision, anchor_reading_id=ch.anchor_ref,
                last_reading_id=ch.last_ref, opened_at=now, updated_at=now,
                evidence=dict(ch.evidence), **push_state,
            ))  # fmt: skip
        else:
            values: dict[str, object] = {
                "revision": ch.revision,
                "last_reading_id": ch.last_ref,
                "updated_at": now,
                "evidence": dict(ch.evidence),
                **push_state,
            }
            if ch.type == EventType.ALERT_RESOLVED:
                values.update(status="resolved", resolved_at=now)
            conn.execute(a.update().where(a.c.alert_id == ch.alert_id).values(**values))
        conn.execute(tables.alert_history.insert().values(
            alert_id=ch.alert_id, revision=ch.revision, event_type=ch.type.value, at=now,
            evidence=dict(ch.evidence), pushed=ch.notify,
        ))  # fmt: skip
    if failpoint is not None:
        failpoint("after_alerts")
    events = [event_for(ch, now) for ch in changes if ch.notify]
    record_events(conn, events, sink)
    if commit_cursor is not None:
        commit_cursor(conn)
    else:
        write_cursor(conn, name, cursor, now)
    if failpoint is not None:
        failpoint("before_commit")
    return events


def write_cursor(conn: sa.Connection, name: str, cursor: int, now: datetime) -> None:
    """Set engine `name`'s cursor to `cursor` (in the caller's transaction)."""
    c = tables.alert_engine_cursor
    updated = conn.execute(
        c.update().where(c.c.name == name).values(last_reading_id=cursor, evaluated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(c.insert().values(name=name, last_reading_id=cursor, evaluated_at=now))
