"""The engine is pushed, not polled: a real `homevitals alerts run` on PostgreSQL with a
10-minute fallback poll opens an alert for a batch committed while it waits (ingest's readings
trigger NOTIFYs at the commit, the engine LISTENs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.support import reading, store

ROOT = Path(__file__).parents[3]
FALLBACK_S = 600  # far beyond the deadlines below: only a notification can wake the engine


def _wait_for(engine: sa.Engine, query: sa.Select[tuple[int]], proc: subprocess.Popen[bytes],
              log: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_a_committed_batch_wakes_the_waiting_engine(pg_url: str, tmp_path: Path) -> None:
    ingest_migrate(pg_url)
    alert_store.migrate(pg_url)
    engine = make_engine(pg_url)
    log = tmp_path / "alerts.log"
    argv = [sys.executable, "-m", "homevitals", "alerts", "run", "--db", pg_url,
            "--interval-s", str(FALLBACK_S), "--no-deliver"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Started as a script's background job is, with SIGINT ignored (inherited through exec; so
    # it is when the suite itself runs in the background): Ctrl-C must still stop it.
    default_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        signal.signal(signal.SIGINT, default_sigint)
    c, a = tables.alert_engine_cursor.c, tables.alerts.c
    try:
        # The first step (a full one, nothing stored yet) writes the cursor; then it waits.
        _wait_for(engine, sa.select(sa.func.count()).select_from(tables.alert_engine_cursor)
                  .where(c.name == alert_store.DEFAULT_ENGINE), proc, log)  # fmt: skip
        for n, patient in enumerate(("p-first", "p-second")):
            at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
            store(engine, [reading(patient, at, n + 1, glucose=2.6)], at)
            opened = sa.select(sa.func.count()).where(
                a.patient_id == patient, a.rule_id == "glucose.hypo_l2", a.status == "open"
            )
            _wait_for(engine, opened, proc, log)
    finally:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        finally:
            # Even when the SIGINT was not obeyed (the test fails on it): no process left
            # behind, and no pooled connection left for a later test to garbage-collect.
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            engine.dispose()
