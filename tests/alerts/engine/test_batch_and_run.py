"""`homevitals alerts evaluate --db --since` (replay) and `homevitals alerts run --once` as real
console-script subprocesses against PostgreSQL, and the migrations against the table models."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alerts.delivery.tables import webhook_events
from alerts.engine import store as alert_store
from alerts.engine import tables
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW, first_batch, second_batch
from tests.alerts.engine.support import reading, store

HOMEVITALS = Path(sys.executable).with_name("homevitals")


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    ingest_migrate(pg_url)
    alert_store.migrate(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOMEVITALS), "alerts", *args], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_migrations_create_exactly_the_modelled_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    ours = [d for d in diff if _table_of(d) in tables.metadata.tables]
    assert ours == []
    assert any(_table_of(d) == "readings" for d in diff)  # the filter sees other tables too
    alert_store.migrate(engine.url.render_as_string(hide_password=False))  # idempotent


def _table_of(diff: object) -> str:
    """The table a compare_metadata entry is about (table ops, index ops, column lists)."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return _table_of(diff[0])
    assert isinstance(diff, tuple)
    if diff[0] in {"add_column", "remove_column"} or diff[0].startswith("modify_"):
        return str(diff[2])
    item = diff[1]
    table = getattr(item, "table", None)
    return str(getattr(table, "name", None) or getattr(item, "name", ""))


def test_replay_reports_every_episode_with_open_and_resolve_times(
    engine: sa.Engine, pg_url: str
) -> None:
    store(engine, first_batch(), NOW)
    store(engine, second_batch(), NOW + timedelta(minutes=11))
    since = (NOW - timedelta(days=1)).isoformat()
    until = (NOW + timedelta(hours=2)).isoformat()
    proc = _cli("evaluate", "--db", pg_url, "--since", since, "--now", until, "--step-min", "30")
    assert proc.returncode == 0, proc.stderr
    episodes = [json.loads(line) for line in proc.stdout.splitlines()]
    by = {(e["patient_id"], e["rule_id"]): e for e in episodes}
    low = by[("p-low", "glucose.hypo_l2")]
    assert low["resolved_at_s"] is not None and low["resolved_at_s"] > low["opened_at_s"]
    dips = [e for e in episodes if e["patient_id"] == "p-dip"]
    assert len(dips) == 2  # opened and cleared within a step, then dipped again
    assert ("p-bp", "bp.crisis") in by
    assert not any(e["patient_id"] == "p-ctl" for e in episodes)
    with engine.connect() as conn:  # a replay writes nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.alerts)).scalar() == 0


def test_run_once_writes_alerts_and_hands_events_to_delivery(
    engine: sa.Engine, pg_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store(engine, [reading("p-now", now - timedelta(hours=1), 1, glucose=2.6)], now)
    proc = _cli("run", "--db", pg_url, "--once")
    assert proc.returncode == 0, proc.stderr
    with engine.connect() as conn:
        a = tables.alerts.c
        rows = conn.execute(sa.select(a.alert_id, a.rule_id, a.status)).all()
        assert [(r.rule_id, r.status) for r in rows] == [("glucose.hypo_l2", "open")]
        ours = set(conn.execute(sa.select(tables.alert_events.c.event_id)).scalars())
        theirs = set(conn.execute(sa.select(webhook_events.c.event_id)).scalars())
    assert len(ours) == 1
    assert ours == theirs
