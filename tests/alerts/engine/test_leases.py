"""Scale-out of the engine on a real PostgreSQL: leases share the partitions fairly, each
patient is evaluated by exactly one worker (the outcome equals one whole-store runner's), the
whole-store runner refuses to run beside workers, and a SIGKILLed worker's patients are taken
over by the survivor once its leases expire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.errors import StoreError
from alerts.engine.leases import LeaseKeeper
from alerts.engine.partitions import PARTITIONS, partition_of
from alerts.engine.runner import Runner
from alerts.events import AlertEvent
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW, first_batch, second_batch
from tests.alerts.engine.support import reading, store

ROOT = Path(__file__).parents[3]
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


def _maintain(engine: sa.Engine, keeper: LeaseKeeper) -> frozenset[int]:
    with engine.begin() as conn:
        return keeper.maintain(conn)


def _owners(engine: sa.Engine) -> dict[int, str | None]:
    c = tables.alert_engine_leases.c
    with engine.connect() as conn:
        return {int(p): o for p, o in conn.execute(sa.select(c.partition, c.owner))}


def test_workers_share_the_partitions_fairly(pg_url: str) -> None:
    engine = _setup(pg_url)
    a, b, c = (LeaseKeeper(name, lease_s=30) for name in ("w-a", "w-b", "w-c"))
    assert _maintain(engine, a) == frozenset(range(PARTITIONS))  # alone: everything
    assert _maintain(engine, b) == frozenset()  # all held: b waits for a to give some up
    held_a = _maintain(engine, a)  # a sees two workers: keeps its share, frees the rest
    held_b = _maintain(engine, b)
    assert len(held_a) == len(held_b) == PARTITIONS // 2
    assert held_a | held_b == frozenset(range(PARTITIONS))
    for keeper in (c, a, b, c):  # a third worker joins: 22, 21, 21 after a round
        _maintain(engine, keeper)
    owners = _owners(engine)
    counts = sorted(list(owners.values()).count(w) for w in ("w-a", "w-b", "w-c"))
    assert counts == [21, 21, 22] and None not in owners.values()
    with engine.begin() as conn:
        b.release_all(conn)  # b stops cleanly: its partitions are free at once
    _maintain(engine, a)
    _maintain(engine, c)
    assert set(_owners(engine).values()) == {"w-a", "w-c"}


def _state(engine: sa.Engine) -> set[tuple[object, ...]]:
    a = tables.alerts.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.alert_id, a.patient_id, a.rule_id, a.status, a.revision)
        ).all()
    return {tuple(r) for r in rows}


@pytest.mark.parametrize("full_every_s", [0.0, 86_400.0], ids=["full-steps", "hot-patients"])
def test_each_patient_is_evaluated_by_exactly_one_worker(
    postgres: object, pg_url: str, full_every_s: float
) -> None:
    reference_url = postgres.create_database(pg_url.rsplit("/", 1)[1] + "_ref")  # type: ignore[attr-defined]
    shared, reference = _setup(pg_url), _setup(reference_url)
    keepers = [LeaseKeeper(name, lease_s=60) for name in ("w-1", "w-2")]
    seen: dict[str, set[str]] = {}

    def sink_for(worker: str):  # type: ignore[no-untyped-def]
        def sink(conn: sa.Connection, events: Sequence[AlertEvent]) -> None:
            for e in events:
                seen.setdefault(str(e.patient_id), set()).add(worker)

        return sink

    runners = [
        Runner(shared, scope=k, sink=sink_for(k.worker_id), full_every_s=full_every_s)
        for k in keepers
    ]
    for _ in range(2):
        for keeper in keepers:
            _maintain(shared, keeper)
    for engine in (shared, reference):
        store(engine, first_batch(), NOW)
    for runner in runners:
        runner.step(NOW)
    whole = Runner(reference, full_every_s=full_every_s)
    whole.step(NOW)
    assert _state(shared) == _state(reference) and _state(shared)
    for engine in (shared, reference):
        store(engine, second_batch(), NOW + timedelta(minutes=11))
    t1 = NOW + timedelta(minutes=30)
    for runner in runners:
        runner.step(t1)
    whole.step(t1)
    assert _state(shared) == _state(reference)
    assert seen and all(len(workers) == 1 for workers in seen.values())
    owners = _owners(shared)
    for patient, workers in seen.items():
        assert owners[partition_of(patient)] in workers

    # w-2 stops; w-1 takes its partitions over (loads only those) and carries on alone.
    with shared.begin() as conn:
        keepers[1].release_all(conn)
    assert _maintain(shared, keepers[0]) == frozenset(range(PARTITIONS))
    t2 = t1 + timedelta(minutes=20)
    third = [reading(p, t2 - timedelta(minutes=5), 50 + n, glucose=2.5)
             for n, p in enumerate(sorted(seen))]  # fmt: skip
    for engine in (shared, reference):
        store(engine, third, t2)
    runners[0].step(t2)
    whole.step(t2)
    assert _state(shared) == _state(reference)

    with pytest.raises(StoreError, match="hold leases"):
        Runner(shared).step(t1)  # a whole-store runner beside live workers


def _worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "homevitals", "alerts", "run", "--db", url, "--no-deliver",
            "--scale-out", "--lease-s", "2", "--interval-s", "600"]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )


def _until(check, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not check():
        for proc, log in zip(procs, logs, strict=True):
            assert proc.poll() is None or proc.returncode == -signal.SIGKILL, log.read_text()
        assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
        time.sleep(0.1)


def test_a_sigkilled_workers_patients_are_taken_over(pg_url: str, tmp_path: Path) -> None:
    engine = _setup(pg_url)
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    procs = [_worker(pg_url, log) for log in logs]
    try:
        owners = _owners(engine)

        def split() -> bool:
            nonlocal owners
            owners = _owners(engine)
            live = set(owners.values())
            return None not in live and len(live) == 2

        _until(split, procs, logs)
        victim_id = owners[0]
        victim = next(p for p in procs if f":{p.pid}:" in str(victim_id))
        survivor_id = next(o for o in owners.values() if o != victim_id)
        # One patient in a partition of each worker, then the victim dies.
        patients = {}
        for i in range(1000):
            owner = owners[partition_of(f"p-{i}")]
            patients.setdefault(owner, f"p-{i}")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        batch = [reading(p, at, n, glucose=2.6) for n, p in enumerate(patients.values())]
        store(engine, batch, at)
        a = tables.alerts.c
        opened = sa.select(sa.func.count()).where(
            a.rule_id == "glucose.hypo_l2", a.patient_id.in_(list(patients.values()))
        )

        def taken_over() -> bool:
            with engine.connect() as conn:
                done = conn.execute(opened).scalar() == len(patients)
            return done and set(_owners(engine).values()) == {survivor_id}

        _until(taken_over, procs, logs)
        e = tables.alert_events.c
        with engine.connect() as conn:
            events = conn.execute(
                sa.select(e.patient_id, e.type).where(e.patient_id.in_(list(patients.values())))
            ).all()
        assert sorted(events) == sorted((p, "alert.opened") for p in patients.values())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert procs[0].returncode in (0, -signal.SIGKILL)
