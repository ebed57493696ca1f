"""The runner against the real record store (PostgreSQL): episodes, one transaction, crashes.

The crash test runs a step in a real subprocess that SIGKILLs itself at a failpoint inside the
transaction, restarts in this process and checks the outcome equals an uninterrupted run on a
second database: no duplicate and no missing alert, event or history row.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.runner import Runner
from alerts.events import AlertEvent
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW, first_batch, second_batch
from tests.alerts.engine.support import reading, store

State = tuple[set[tuple[object, ...]], set[tuple[object, ...]], set[tuple[object, ...]], int]


_ENGINES: list[sa.Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


def _setup(url: str) -> sa.Engine:
    ingest_migrate(url)
    alert_store.migrate(url)
    engine = make_engine(url)
    _ENGINES.append(engine)
    return engine


def _state(engine: sa.Engine) -> State:
    with engine.connect() as conn:
        a = tables.alerts.c
        alerts = {tuple(r) for r in conn.execute(sa.select(
            a.alert_id, a.patient_id, a.rule_id, a.subject, a.status, a.revision,
            a.anchor_reading_id, a.last_reading_id))}  # fmt: skip
        h = tables.alert_history.c
        history = {tuple(r) for r in conn.execute(sa.select(h.alert_id, h.revision, h.event_type))}
        e = tables.alert_events.c
        events = {tuple(r) for r in conn.execute(sa.select(e.event_id, e.type, e.revision))}
        return alerts, history, events, alert_store.read_cursor(conn)


def _summary(engine: sa.Engine) -> set[tuple[object, ...]]:
    alerts, _, _, _ = _state(engine)
    return {(pid, rule, status, rev) for _, pid, rule, _, status, rev, _, _ in alerts}


def _sink_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table("sink_events", metadata, sa.Column("event_id", sa.String(36), primary_key=True))


@pytest.mark.parametrize("full_every_s", [0.0, 86_400.0], ids=["full-steps", "hot-patients"])
def test_episodes_open_update_resolve_and_events_reach_the_sink(
    pg_url: str, full_every_s: float
) -> None:
    engine = _setup(pg_url)
    sink_table = _sink_table(sa.MetaData())
    sink_table.create(engine)

    def sink(conn: sa.Connection, events: Sequence[AlertEvent]) -> None:
        conn.execute(sink_table.insert(), [{"event_id": e.event_id} for e in events])

    store(engine, first_batch(), NOW)
    runner = Runner(engine, sink=sink, full_every_s=full_every_s)
    first = runner.step(NOW)
    assert _summary(engine) >= {
        ("p-low", "glucose.hypo_l2", "open", 1),
        ("p-dip", "glucose.hypo_l2", "resolved", 2),
        ("p-bp", "bp.crisis", "open", 1),
        ("p-var", "glucose.cv_14d", "open", 1),
        ("p-var", "glucose.tir_14d", "open", 1),
        ("p-var", "glucose.tbr_14d", "open", 1),
    }
    assert not any(pid == "p-ctl" for pid, *_ in _summary(engine))
    assert runner.step(NOW + timedelta(minutes=1)).events == ()  # nothing new: no churn

    store(engine, second_batch(), NOW + timedelta(minutes=11))
    second = runner.step(NOW + timedelta(minutes=30))  # past the re-measure time
    summary = _summary(engine)
    assert ("p-low", "glucose.hypo_l2", "resolved", 2) in summary
    assert ("p-bp", "bp.crisis", "open", 2) in summary  # updated with the new reading
    dips = [s for s in summary if s[0] == "p-dip" and s[1] == "glucose.hypo_l2"]
    assert sorted(dips) == [("p-dip", "glucose.hypo_l2", "open", 1),
                            ("p-dip", "glucose.hypo_l2", "resolved", 2)]  # fmt: skip
    _, history, events, cursor = _state(engine)
    with engine.connect() as conn:
        sunk = set(conn.execute(sa.select(sink_table.c.event_id)).scalars())
    assert sunk == {e[0] for e in events}
    assert len(events) == len(first.events) + len(second.events)
    # Every revision is in the record; the crisis update (190/100 after 186/100: not 10 mmHg
    # worse, no symptoms) is kept there but not pushed (alert fatigue).
    with engine.connect() as conn:
        h, a = tables.alert_history.c, tables.alerts.c
        quiet = conn.execute(
            sa.select(a.rule_id, h.revision, h.event_type)
            .join(tables.alerts, a.alert_id == h.alert_id)
            .where(h.pushed.is_(False))
        ).all()
    assert [tuple(q) for q in quiet] == [("bp.crisis", 2, "alert.updated")]
    assert len(history) == len(events) + 1
    assert cursor == second.cursor > first.cursor


def test_evidence_names_readings_thresholds_and_rule_version(pg_url: str) -> None:
    engine = _setup(pg_url)
    batch = first_batch()
    store(engine, batch, NOW)
    Runner(engine).step(NOW)
    with engine.connect() as conn:
        a = tables.alerts.c
        evidence = conn.execute(sa.select(a.evidence).where(
            a.patient_id == "p-low", a.rule_id == "glucose.hypo_l2")).scalar_one()  # fmt: skip
    low_ids = [r.reading_id for r in batch if r.patient_id == "p-low"]
    assert evidence["reading_ids"] == low_ids
    assert evidence["rule_version"] == 2
    assert evidence["thresholds"]["below_mmol_l"] == 2.997  # 54 mg/dL
    assert "ADA" in evidence["source"]


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from alerts.engine.runner import Runner
    from ingest.store import make_engine

    url, point, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])

    def failpoint(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    Runner(make_engine(url), failpoint=failpoint).step(now)
    """
)


def _crash_step(url: str, point: str, now_iso: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url, point, now_iso], capture_output=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.mark.parametrize("point", ["after_alerts", "before_commit"])
def test_crash_mid_evaluation_then_restart_gives_no_duplicate_and_no_missing_alert(
    postgres: object, pg_url: str, point: str
) -> None:
    reference_url = postgres.create_database(pg_url.rsplit("/", 1)[1] + "_ref")  # type: ignore[attr-defined]
    engines = [_setup(pg_url), _setup(reference_url)]
    for engine in engines:
        store(engine, first_batch(), NOW)
    crashed, reference = engines
    t1 = NOW + timedelta(minutes=30)

    _crash_step(pg_url, point, NOW.isoformat())
    assert _state(crashed) == (set(), set(), set(), 0)  # the killed transaction left nothing
    Runner(crashed).step(NOW)
    Runner(reference).step(NOW)
    assert _state(crashed)[:3] == _state(reference)[:3]

    for engine in engines:
        store(engine, second_batch(), NOW + timedelta(minutes=11))
    before = _state(crashed)
    _crash_step(pg_url, point, t1.isoformat())
    assert _state(crashed) == before
    restarted = Runner(crashed)
    restarted.step(t1)
    Runner(reference).step(t1)
    assert _state(crashed) == _state(reference)
    assert restarted.step(t1 + timedelta(minutes=1)).events == ()


def test_a_step_moves_the_cursor_past_readings_it_merged_as_duplicates(pg_url: str) -> None:
    """Readings identical in patient, time and value under different ids are one reading to the
    rules; the step that read them has still read them all: its cursor passes every id, so the
    next step does not read them again (one group per wake-up, the engine looking behind)."""
    engine = _setup(pg_url)
    at = NOW - timedelta(hours=1)
    repeats = [reading(f"p{p}", at, seq, glucose=6.1) for seq in range(5) for p in range(3)]
    store(engine, repeats, NOW)
    runner = Runner(engine, full_every_s=86_400.0)
    runner.step(NOW)  # the first step loads the window
    store(engine, [reading(f"p{p}", at, 10 + seq, glucose=6.1) for seq in range(4)
                   for p in range(3)], NOW)  # fmt: skip
    with engine.connect() as conn:
        last_id = int(conn.execute(sa.text("SELECT max(id) FROM readings")).scalar_one())
    result = runner.step(NOW + timedelta(seconds=1))
    assert result.cursor == last_id
    assert result.caught_up
    with engine.connect() as conn:
        assert alert_store.read_cursor(conn) == last_id
