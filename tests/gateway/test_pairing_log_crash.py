"""SIGKILL a process that keeps pairing and unpairing devices on a real hub file: after each
kill, every change it reported done has its pairing event, the devices table and the log agree
(a change is never written without its event, nor an event without its change), and every event
still waiting for ingest's receipt is sent again after the restart, in order."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from gateway.outbox import Outbox
from gateway.registry import Registry

ROOT = Path(__file__).parents[2]
KILLS = 4
LINES_BEFORE_KILL = 25

# Pairs device n, unpairs device n-1 when n is odd; every 7th change it marks what waits as
# sent (a publish whose receipt never came). Prints each change once it returned (committed).
CHILD = """
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from gateway.outbox import Outbox
from gateway.registry import PairedDevice, Registry
from tests.gateway.factories import meter
path, start = Path(sys.argv[1]), int(sys.argv[2])
registry, outbox = Registry(path), Outbox(path)
n = start
while True:
    device = meter(f"S{n:05d}")
    registry.add(PairedDevice(device, "F1:00", "glucose", "p-1", datetime.now(UTC)))
    print("pair", device.id, flush=True)
    if n % 2:
        gone = meter(f"S{n - 1:05d}")  # paired by the previous turn (start is even)
        registry.remove(gone.id, datetime.now(UTC))
        print("unpair", gone.id, flush=True)
    if n % 7 == 0:
        now = datetime.now(UTC)
        outbox.mark_pairings_sent([e.event_id for e in outbox.due_pairings(now, 3600.0)], now)
    n += 1
"""


def _run_and_kill(path: Path, start: int) -> list[tuple[str, str]]:
    """Run the child until it reported LINES_BEFORE_KILL changes, SIGKILL it, return them."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(start)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        done: list[tuple[str, str]] = []
        while len(done) < LINES_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"the child stopped on its own: {child.stderr.read()}"
            action, device_id = line.split()
            done.append((action, device_id))
        child.kill()  # SIGKILL, mid-change more often than not: it never stops to wait
        child.wait(30)
        assert child.returncode == -9
        for line in child.stdout:  # changes it reported after our count, before dying
            action, device_id = line.split()
            done.append((action, device_id))
    return done


def test_sigkill_while_pairing_loses_no_event_and_splits_no_change(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"
    reported: list[tuple[str, str]] = []
    for kill in range(KILLS):
        reported += _run_and_kill(path, start=1000 * kill)
        registry, outbox = Registry(path), Outbox(path)
        try:
            with closing(sqlite3.connect(path)) as reader:
                rows = reader.execute(
                    "SELECT action, device_id FROM pairing_events ORDER BY seq"
                ).fetchall()
            log = [(str(a), str(d)) for a, d in rows]
            # Everything reported done is in the log, in the order it was done.
            assert [e for e in log if e in reported] == reported
            # At most the change in flight at the kill is beyond what was reported.
            assert len(log) - len(reported) in (0, 1)
            paired: set[str] = set()
            for action, device_id in log:
                (paired.add if action == "pair" else paired.discard)(device_id)
            assert {p.device_id for p in registry.all()} == paired  # no half-written change
            # Sent before the kill but never receipted: due again once the hub reconnects.
            now = datetime.now(UTC)
            outbox.make_all_due(now)
            due = outbox.due_pairings(now, 3600.0, limit=10_000)
            assert [(e.action, e.device_id) for e in due] == log
            assert outbox.pending_pairings() == len(log)
        finally:
            registry.close()
            outbox.close()
