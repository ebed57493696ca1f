"""Webhook delivery: throughput of one worker and alarm-signal latency (commit -> receiver 2xx).

Run: `.venv/bin/python -m bench.bench_delivery [--quick]` (under a minute). Starts its own
PostgreSQL and a verifying receiver (`homevitals webhook receive`, a separate process on
loopback), and appends the figures with the machine to bench/RESULTS.md.

- baseline: one httpx client POSTing the same signed body sequentially to the same receiver
  (the ceiling of one sequential sender: delivery adds signing, SSRF checks, and two
  PostgreSQL transactions per attempt).
- throughput: `EVENTS` events enqueued in one transaction, then `DeliveryWorker.run_once`
  until nothing is due; events / elapsed. Once to one endpoint (sequential by design), once
  spread over `TEAMS` endpoints (served concurrently).
- latency (IEC 60601-1-8 "alarm signal generation delay"): the worker runs in a thread
  (poll interval 10 ms) while events are committed one at a time, 20 ms apart; latency is
  `delivered_at` (the worker's clock after the 2xx) minus the commit time.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from alerts.delivery import signing
from alerts.delivery.migrations import migrate
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.payload import LinkConfig
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.tables import webhook_deliveries
from alerts.delivery.worker import DeliveryWorker, WorkerConfig
from bench import common
from tests.alerts.delivery import builders as b
from tests.support.servers import PostgresServer, free_port, wait_for_port

ROOT = Path(__file__).parents[1]
EVENTS = 1000
LATENCY_EVENTS = 200
TEAMS = 10


def _now() -> datetime:
    return datetime.now(UTC)


def _baseline(url: str, secret: str, count: int) -> float:
    body = b'{"data":{"event_id":"e","revision":1},"timestamp":"2026-03-01T12:00:00Z","type":"x"}'
    with httpx.Client(trust_env=False) as http:
        started = time.perf_counter()
        for i in range(count):
            headers = signing.sign_headers(f"b{i}", _now(), body, [secret])
            http.post(url, content=body, headers=headers).raise_for_status()
        return count / (time.perf_counter() - started)


def _setup(engine: sa.Engine, url: str, patient: str = "p1") -> str:
    with engine.begin() as conn:
        team = b.make_team(conn, _now(), patient, name=patient)
        return b.add_endpoint(conn, team, url, _now(), types=("alert.opened",)).secret


def _worker(engine: sa.Engine) -> DeliveryWorker:
    config = WorkerConfig(
        links=LinkConfig("https://api.example.org/v1"),
        secrets=b.BOX,
        policy=SsrfPolicy(allow_loopback=True),
        batch_size=100,
    )
    return DeliveryWorker(engine, config, _now, random.Random(1))


def _throughput(engine: sa.Engine, patients: list[str], tag: str) -> float:
    events = [b.opened(f"{tag}{i}", patients[i % len(patients)], _now()) for i in range(EVENTS)]
    with engine.begin() as conn:
        enqueue_events(conn, events)
    worker = _worker(engine)
    started = time.perf_counter()
    done = 0
    while (n := worker.run_once()) > 0:
        done += n
    elapsed = time.perf_counter() - started
    worker.close()
    with engine.connect() as conn:
        delivered = conn.execute(
            sa.select(sa.func.count()).where(
                webhook_deliveries.c.event_id.in_([e.event_id for e in events]),
                webhook_deliveries.c.status == "delivered",
            )
        ).scalar()
    assert done == delivered == EVENTS, (done, delivered)
    return EVENTS / elapsed


def _latencies(engine: sa.Engine) -> list[float]:
    worker = _worker(engine)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.01))
    thread.start()
    committed: dict[str, datetime] = {}
    try:
        for i in range(LATENCY_EVENTS):
            event = b.opened(f"l{i}", "p1", _now())
            with engine.begin() as conn:
                enqueue_events(conn, [event])
            committed[event.event_id] = _now()
            time.sleep(0.02)
        d = webhook_deliveries.c
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(d.event_id, d.delivered_at).where(d.event_id.in_(list(committed)))
                ).all()
            if all(r.delivered_at is not None for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
        worker.close()
    return sorted(max(0.0, (r.delivered_at - committed[r.event_id]).total_seconds()) for r in rows)


def main(argv: list[str] | None = None) -> None:
    """Run the delivery benchmark and append the figures to bench/RESULTS.md."""
    global EVENTS, LATENCY_EVENTS
    args = common.parser("bench_delivery", __doc__).parse_args(argv)
    if args.quick:
        EVENTS, LATENCY_EVENTS = 300, 100
    load_start = common.load_1min()
    work = Path(tempfile.mkdtemp(prefix="hv-bench-delivery-"))
    os.chmod(work, 0o755)
    postgres = PostgresServer(work / "pg")
    postgres.start()
    port = free_port()
    receiver: subprocess.Popen[bytes] | None = None
    try:
        url = postgres.create_database("bench_delivery")
        engine = sa.create_engine(url)
        migrate(engine)
        secret = _setup(engine, f"http://127.0.0.1:{port}/hook")
        # Ten more teams, one endpoint each, on the same receiver (other paths): served at once.
        many = [f"q{i}" for i in range(TEAMS)]
        secrets = [secret] + [_setup(engine, f"http://127.0.0.1:{port}/{p}", p) for p in many]
        receiver = subprocess.Popen(
            [sys.executable, "-m", "homevitals", "webhook", "receive", "--port", str(port)]
            + [arg for s in secrets for arg in ("--secret", s)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        wait_for_port(port, receiver, None)
        base = _baseline(f"http://127.0.0.1:{port}/hook", secret, EVENTS)
        rate = _throughput(engine, ["p1"], "t")
        rate_many = _throughput(engine, many, "m")
        lat = _latencies(engine)
        engine.dispose()
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        postgres.stop()
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(0.99 * (len(lat) - 1))] * 1000
    lines = [
        "",
        f"## alerts/delivery: webhook delivery ({common.stamp()})",
        "",
        f"Machine: {common.machine(load_start)}. One run.",
        f"Run: `python -m bench.bench_delivery{' --quick' if args.quick else ''}`.",
        "PostgreSQL 15 (fsync on) on loopback; receiver `homevitals webhook receive` (verifies "
        "every signature) in its own process.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| baseline: sequential signed httpx POSTs to the receiver | {base:,.0f} req/s |",
        f"| one delivery worker, {EVENTS} queued events, 1 endpoint | {rate:,.0f} deliveries/s |",
        f"| same, spread over {TEAMS} endpoints (concurrency 8) | {rate_many:,.0f} deliveries/s |",
        f"| commit -> 2xx latency, {len(lat)} events 20 ms apart, p50 | {p50:,.1f} ms |",
        f"| same, p99 (target p99 <= 2 s, docs/reliability.md) | {p99:,.1f} ms |",
        f"| same, max | {lat[-1] * 1000:,.1f} ms |",
    ]
    common.write("\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
