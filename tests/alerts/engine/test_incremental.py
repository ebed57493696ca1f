"""The incremental step equals a full evaluation: a runner that evaluates only the patients with
new readings (from its tiered window: base, tail, segment offsets, rows within the rules'
horizon) and one that evaluates everyone at every step end with the same alerts, revisions and
events, over batches with late (back-filled), repeated readings and a patient new to the window.
Every patient sends in every batch, so both evaluate the same patients; adherence (full steps
only) is left out. The incremental runner evaluates each rule over the rows it reads
(`alerts.engine.scoped`), the full one every rule over every row."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.runner import ADHERENCE_RULE, Runner
from devices.reading import Reading
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW
from tests.alerts.engine.support import reading, store

PATIENTS = [f"p{i}" for i in range(12)]


def _engine(path: Path) -> sa.Engine:
    url = f"sqlite:///{path}"
    ingest_migrate(url)
    alert_store.migrate(url)
    return make_engine(url)


def _batch(
    rng: random.Random, at: datetime, seq: int, patients: list[str] = PATIENTS
) -> list[Reading]:
    out = []
    for n, pid in enumerate(patients):
        # Mostly now; sometimes back-filled by up to 10 days (a hub that was offline).
        when = at - timedelta(minutes=rng.randint(0, 50))
        if rng.random() < 0.2:
            when -= timedelta(days=rng.uniform(0.5, 10))
        s = seq * 100 + n
        if rng.random() < 0.6:
            out.append(reading(pid, when, s, glucose=round(rng.uniform(2.2, 18.0), 1),
                               meal=rng.choice([None, "fasting", "postprandial"])))  # fmt: skip
        else:
            out.append(reading(pid, when, s, bp=(rng.randint(80, 200), rng.randint(50, 120))))
    if rng.random() < 0.3:
        out.append(out[0])  # the same reading again
    return out


def _state(engine: sa.Engine) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    a, e = tables.alerts.c, tables.alert_events.c
    with engine.connect() as conn:
        alerts = {
            tuple(r)
            for r in conn.execute(
                sa.select(a.alert_id, a.patient_id, a.rule_id, a.subject, a.status, a.revision)
            )
            if r.rule_id != ADHERENCE_RULE
        }
        events = {
            tuple(r)
            for r in conn.execute(sa.select(e.event_id, e.type, e.rule_id))
            if r.rule_id != ADHERENCE_RULE
        }
    return alerts, events


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    pair = (_engine(tmp_path / "incremental.db"), _engine(tmp_path / "full.db"))
    yield pair
    for engine in pair:
        engine.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_steps_equal_full_evaluations(
    engines: tuple[sa.Engine, sa.Engine], seed: int
) -> None:
    rng = random.Random(seed)
    print(f"seed {seed}")
    incremental_db, full_db = engines
    history = [
        r
        for day in range(14, 0, -1)
        for r in _batch(rng, NOW - timedelta(days=day, hours=rng.randint(0, 12)), 1000 + day)
    ]
    for engine in engines:
        store(engine, history, NOW)
    incremental = Runner(incremental_db, full_every_s=10**9)
    full = Runner(full_db, full_every_s=0.0)
    at = NOW
    for step in range(8):
        # A patient new to the window joins from the fourth step on.
        batch = _batch(rng, at, step, PATIENTS + ["joiner"] * (step >= 3))
        for engine in engines:
            store(engine, batch, at)
        incremental.step(at)
        full.step(at)
        assert _state(incremental_db) == _state(full_db), f"step {step}"
        at += timedelta(minutes=rng.randint(5, 90))
    alerts, events = _state(incremental_db)
    assert alerts and events  # the stream does raise alerts
