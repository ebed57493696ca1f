"""Record store: migrations, SQLite durability settings, idempotent batch writes, read port."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from devices import Special
from devices.reading import CONTROL_SOLUTION, reading_from_json
from devices.wire import Heartbeat
from ingest import schema
from ingest.errors import StoreError
from ingest.hub_facts import HubUpdates, write_hub_updates
from ingest.read_port import last_reading_id, readings_for_patient, readings_since
from ingest.rows import QuarantineItem, typed_number
from ingest.store import make_engine, migrate, write_batch
from tests.ingest.support import make_reading

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_sqlite_every_pooled_connection_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        # Two connections at once: the second is a fresh DBAPI connection from the pool.
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        engine.dispose()  # the pool is emptied: the next connection is brand new
        with engine.connect() as fresh:
            assert fresh.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        engine.dispose()


def test_migrations_create_the_schema_and_are_idempotent(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        assert {"readings", "patients", "devices", "quarantine", "mirror_cursors"} <= tables
        assert {"hub_status", "device_contacts"} <= tables
        assert "alembic_version_ingest" in tables
        for table in schema.metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version_ingest"))
            assert version.scalar_one() == _head()
    finally:
        engine.dispose()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ingest.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_a_resent_batch_changes_nothing(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    readings = [make_reading("gw-1", "patient-1", "SN1", seq) for seq in range(10)]
    bad = QuarantineItem("hv/v1/gw/gw-1/readings", b"not json", "$", "payload is not JSON")
    try:
        first = write_batch(engine, readings, [bad], now=NOW)
        assert first.inserted_ids == {r.reading_id for r in readings}
        assert first.quarantined_new == 1
        again = write_batch(engine, readings[3:] + readings[:3], [bad], now=NOW)
        assert again.inserted_ids == frozenset()
        assert again.quarantined_new == 0
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(schema.readings))
            assert count.scalar_one() == 10
            q = conn.execute(sa.select(schema.quarantine)).one()
            assert (q.payload, q.field, q.topic) == (b"not json", "$", bad.topic)
            patients = conn.execute(sa.select(schema.patients.c.patient_id)).scalars().all()
            assert patients == ["patient-1"]
    finally:
        engine.dispose()


def test_the_read_port_returns_columns_in_commit_order(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    special = make_reading("gw-1", "patient-2", "SN2", 2)
    special = dataclasses.replace(
        special, values={"glucose_mmol_l": Special.POSITIVE_INFINITY}, status=(CONTROL_SOLUTION,)
    )
    first = [make_reading("gw-1", "patient-1", "SN1", seq) for seq in range(6)]
    try:
        write_batch(engine, first, [], now=NOW)
        write_batch(engine, [special], [], now=NOW)
        assert last_reading_id(engine) >= 7
        page = readings_since(engine, 0, limit=4)
        assert len(page) == 4
        rest = readings_since(engine, page.last_id or 0)
        assert list(page.reading_id) + list(rest.reading_id) == [
            r.reading_id for r in [*first, special]
        ]
        assert np.all(np.diff(np.concatenate([page.id, rest.id])) > 0)
        assert np.isnan(rest.glucose_mmol_l[-1]) and bool(rest.control_solution[-1])
        assert rest.patient_id[-1] == "patient-2"
        assert rest.values[-1] == {"glucose_mmol_l": "+INF"}
        assert rest.status[-1] == (CONTROL_SOLUTION,) and page.status[0] == ()
        assert readings_since(engine, rest.last_id or 0).last_id is None

        window = readings_for_patient(
            engine,
            "patient-1",
            "glucose",
            first[0].measured_at,
            first[0].measured_at + timedelta(minutes=4),
        )
        assert list(window.reading_id) == [first[0].reading_id, first[2].reading_id]
        assert window.glucose_mmol_l.tolist() == [4.0, 4.2]
        assert window.measured_at_s.tolist() == [
            first[0].measured_at.timestamp(),
            first[2].measured_at.timestamp(),
        ]
        assert window.meal.tolist() == ["preprandial", "preprandial"]
        bp = readings_since(engine, 0)
        systolic = bp.systolic_mmhg[bp.kind == "blood_pressure"]
        assert systolic.tolist() == [111.0, 113.0, 115.0]
    finally:
        engine.dispose()


def test_read_port_rejects_naive_times_and_bad_limits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with pytest.raises(ValueError, match="limit"):
            readings_since(engine, 0, limit=0)
        with pytest.raises(ValueError, match="timezone"):
            readings_for_patient(engine, "p", "glucose", datetime(2026, 1, 1), NOW)
    finally:
        engine.dispose()


def test_bad_urls_and_unreachable_databases_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        make_engine("no such url")
    with pytest.raises(StoreError, match="migration failed"):
        migrate("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_conflicting_content_under_a_stored_id_is_quarantined_keeping_both(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    original = make_reading("gw-1", "patient-1", "SN1", 2)
    altered = dataclasses.replace(original, values={"glucose_mmol_l": 9.9})
    also_other = dataclasses.replace(make_reading("gw-1", "patient-1", "SN1", 4), patient_id="p-9")
    resend_other_session = dataclasses.replace(
        original, received_at=original.received_at + timedelta(days=1), clock_offset_s=3.0
    )
    try:
        write_batch(engine, [original, make_reading("gw-1", "patient-1", "SN1", 4)], [], now=NOW)
        same = write_batch(engine, [resend_other_session], [], now=NOW)
        assert (same.inserted_ids, same.conflicts, same.quarantined_new) == (set(), set(), 0)
        result = write_batch(engine, [altered, also_other], [], now=NOW)
        assert result.inserted_ids == frozenset()
        assert result.conflicts == {original.reading_id, also_other.reading_id}
        assert result.quarantined_new == 2
        again = write_batch(engine, [altered], [], now=NOW)  # a redelivery lands once
        assert again.conflicts == {original.reading_id}
        assert again.quarantined_new == 0
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(schema.readings.c.glucose_mmol_l).where(
                    schema.readings.c.reading_id == original.reading_id
                )
            ).scalar_one()
            assert stored == original.values["glucose_mmol_l"]  # the stored version stays
            rows = conn.execute(sa.select(schema.quarantine).order_by(schema.quarantine.c.id)).all()
        assert {(q.reading_id, q.field) for q in rows} == {
            (original.reading_id, "values"),
            (also_other.reading_id, "patient_id"),
        }
        assert all(q.reason.startswith("conflict:") for q in rows)
        (kept_row,) = [q for q in rows if q.reading_id == original.reading_id]
        kept = reading_from_json(json.loads(kept_row.payload))
        assert kept.values == {"glucose_mmol_l": 9.9}  # the received version is kept
    finally:
        engine.dispose()


def test_a_repeat_within_one_batch_with_other_content_is_a_conflict(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    first = make_reading("gw-1", "patient-1", "SN1", 2)
    repeat = dataclasses.replace(first, context={"meal": "postprandial"})
    try:
        result = write_batch(engine, [first, first, repeat], [], now=NOW)
        assert result.inserted_ids == {first.reading_id}
        assert result.conflicts == {first.reading_id}
        with engine.connect() as conn:
            q = conn.execute(sa.select(schema.quarantine)).one()
        assert (q.reading_id, q.field) == (first.reading_id, "context")
    finally:
        engine.dispose()


def test_whole_number_values_reach_the_typed_columns(db_url: str) -> None:
    # Python ints are numbers: a reading built with `systolic_mmhg=140` (mypy lets an int stand
    # for a float) used to be stored with NULL typed columns, invisible to the rules engine.
    migrate(db_url)
    engine = make_engine(db_url)
    bp = dataclasses.replace(
        make_reading("gw-1", "patient-int", "SN9", 1),
        values={"systolic_mmhg": 182, "diastolic_mmhg": 121, "pulse_per_min": 70},
    )
    glucose = dataclasses.replace(
        make_reading("gw-1", "patient-int", "SN9", 2), values={"glucose_mmol_l": 3}
    )
    try:
        write_batch(engine, [bp, glucose], [], now=NOW)
        start, end = bp.measured_at - timedelta(hours=1), bp.measured_at + timedelta(hours=1)
        got = readings_for_patient(engine, "patient-int", "blood_pressure", start, end)
        assert got.systolic_mmhg.tolist() == [182.0]
        assert got.diastolic_mmhg.tolist() == [121.0]
        assert got.pulse_per_min.tolist() == [70.0]
        sugar = readings_for_patient(engine, "patient-int", "glucose", start, end)
        assert sugar.glucose_mmol_l.tolist() == [3.0]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("value", "typed"),
    [(140, 140.0), (140.5, 140.5), (True, None), (Special.NAN, None), (None, None)],
)
def test_typed_columns_take_numbers_only(value: object, typed: float | None) -> None:
    got = typed_number(value)
    assert got == typed and (got is None or type(got) is float)


def test_a_heartbeat_records_the_hubs_storage_state_and_clock_offset(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    h = schema.hub_status.c
    try:
        # The hub's clock runs two hours ahead of ours and its outbox is full.
        ahead = Heartbeat("gw-1", NOW + timedelta(hours=2, seconds=1.5), (), storage_full=True)
        with engine.begin() as conn:
            write_hub_updates(conn, HubUpdates(heartbeats={"gw-1": ahead}), NOW)
        with engine.connect() as conn:
            row = conn.execute(sa.select(h.storage_full, h.clock_offset_s)).one()
        assert (row.storage_full, row.clock_offset_s) == (True, 7201.5)
        # The next heartbeat: room again, the clock stepped back behind ours.
        behind = Heartbeat("gw-1", NOW - timedelta(seconds=30), ())
        with engine.begin() as conn:
            write_hub_updates(conn, HubUpdates(heartbeats={"gw-1": behind}), NOW)
        with engine.connect() as conn:
            row = conn.execute(sa.select(h.storage_full, h.clock_offset_s)).one()
        assert (row.storage_full, row.clock_offset_s) == (False, -30.0)
    finally:
        engine.dispose()
