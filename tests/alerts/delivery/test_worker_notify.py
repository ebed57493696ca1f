"""The delivery worker is pushed, not polled: a real `python -m alerts.delivery` on PostgreSQL,
with its idle poll and fallback far beyond the deadlines here, delivers events committed while
it waits (the outbox trigger NOTIFYs at the commit, the worker LISTENs), and SIGTERM still
stops it at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from alerts.delivery.outbox import enqueue_events
from alerts.delivery.tables import webhook_deliveries
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.alerts.delivery.test_worker_crash import worker_env


def _delivered(db: sa.Engine, event_id: str) -> bool:
    d = webhook_deliveries.c
    with db.connect() as conn:
        status = conn.execute(sa.select(d.status).where(d.event_id == event_id)).scalar()
    return status == "delivered"


def test_committed_events_wake_the_waiting_worker(
    db: sa.Engine, pg_url: str, clock: FakeClock, receiver: ScriptedReceiver, tmp_path: Path
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        b.add_endpoint(conn, team, receiver.url(), clock())
    env = worker_env(pg_url, HV_DELIVERY_NOTIFY_FALLBACK_S="300")
    env["HV_DELIVERY_POLL_INTERVAL_S"] = "60"
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "alerts.delivery"], env=env, stderr=sink)
    try:
        # The first event may be sent by the first pass; after it the worker is idle and only
        # a notification can bring it back within the deadline.
        for n in range(3):
            event = b.opened(f"n{n}", "p1", clock())
            with db.begin() as conn:
                enqueue_events(conn, [event])
            deadline = time.monotonic() + 60
            while not _delivered(db, event.event_id):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        assert [r.headers["webhook-id"] for r in receiver.received] == [
            b.opened(f"n{n}", "p1", clock()).event_id for n in range(3)
        ]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)  # interrupted at once, not after its 300 s fallback
    assert worker.returncode == 0, log.read_text()
