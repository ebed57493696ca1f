"""Engine scale-out: 1, 2 and 4 `homevitals alerts run --scale-out` workers on one PostgreSQL.

    python -m bench.bench_scale [--patients 20000] [--days 14] [--workers 1,2,4] [--quick]

Set-up: PostgreSQL 15 from Debian in a temporary directory; `--patients` patients with `--days`
days of history (glucose 4/day, blood pressure 2/day) written through ingest's write path. For
each worker count, the engine's state is reset (no alerts, every partition's cursor at the end
of the history) and the workers start with their shipped defaults (woken by NOTIFY, lease
period 10 s). Measured, each with the load average:

- start-up: until every partition is leased to a worker and evaluated once (window load and a
  full evaluation of the history);
- backlog: the workers are paused (SIGSTOP), `--backlog` new readings are committed, the
  workers resume (SIGCONT); time until every partition's cursor passes the last of them:
  readings evaluated per second by the continuous path (each worker reads and evaluates only
  its partitions' readings);
- steady load: readings committed at `--rate` per second for `--window` seconds, with probes
  (one low glucose reading, `glucose.hypo_l2`, each for its own patient) at even intervals;
  latency = probe commit -> its alert row committed; CPU % of each worker from /proc;
- failover (2 workers): one worker is SIGKILLed and probes are committed for patients of its
  partitions at once; time until their alerts are committed by the survivor (its leases must
  expire first: the lease period bounds it from below).

Baseline in the same run: the one-worker figures. `--quick`: 2,000 patients, 10,000 backlog
readings, 500 readings/s for 8 s (about a minute and a half).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.partitions import PARTITIONS, partition_of
from bench import common
from devices.reading import Reading
from ingest.store import make_engine, write_batch
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.support import reading
from tests.support.servers import PostgresServer

ROOT = Path(__file__).parents[1]
LEASE_S = 10.0
SLOTS_H = ((7, "g"), (7.5, "b"), (12, "g"), (18, "g"), (19.5, "b"), (22, "g"))


def _history(n_patients: int, days: int, now: datetime) -> list[Reading]:
    out = []
    day0 = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    for p in range(n_patients):
        pid = f"p{p:06d}"
        seq = 0
        for d in range(days + 1):
            for hour, kind in SLOTS_H:
                at = day0 + timedelta(days=d, hours=hour, minutes=p % 17)
                if at > now - timedelta(hours=1):
                    continue
                seq += 1
                if kind == "g":
                    out.append(reading(pid, at, seq, glucose=5.0 + (p + d + seq) % 40 / 10))
                else:
                    out.append(reading(pid, at, seq, bp=(118 + (p + d) % 15, 76)))
    return out


def _write(engine: sa.Engine, readings: list[Reading], chunk: int = 2000) -> None:
    now = datetime.now(UTC)
    for start in range(0, len(readings), chunk):
        write_batch(engine, readings[start : start + chunk], [], now=now)


def _max_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM readings")).scalar_one())


def _partition_max_ids(engine: sa.Engine, after_id: int) -> dict[int, int]:
    """The highest `readings.id` above `after_id` of each partition (its cursor must pass it)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT patient_id, max(id) FROM readings WHERE id > :a GROUP BY patient_id"),
            {"a": after_id},
        ).all()
    out: dict[int, int] = {}
    for patient, last in rows:
        k = partition_of(patient)
        out[k] = max(out.get(k, 0), int(last))
    return out


def _drained(engine: sa.Engine, targets: dict[int, int]) -> Callable[[], bool]:
    def check() -> bool:
        cursors = {p: c or 0 for p, _, c in _leases(engine)}
        return all(cursors[p] >= last for p, last in targets.items())

    return check


def _one_per_partition() -> list[str]:
    chosen: dict[int, str] = {}
    i = 0
    while len(chosen) < PARTITIONS:
        chosen.setdefault(partition_of(f"warm-{i}"), f"warm-{i}")
        i += 1
    return list(chosen.values())


def _reset(engine: sa.Engine, cursor: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE alert_history, alert_events, alerts"))
        conn.execute(sa.delete(tables.alert_engine_workers))
        conn.execute(
            sa.update(tables.alert_engine_leases).values(
                owner=None, lease_until=None, epoch=0, last_reading_id=None
            )
        )
        alert_store.write_cursor(conn, alert_store.DEFAULT_ENGINE, cursor, datetime.now(UTC))


def _leases(engine: sa.Engine) -> list[tuple[int, str | None, int | None]]:
    c = tables.alert_engine_leases.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(c.partition, c.owner, c.last_reading_id))]  # type: ignore[misc]


def _wait(check: Callable[[], bool], what: str, timeout_s: float = 300) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(what)
        time.sleep(0.02)
    return time.perf_counter() - started


def _cpu_s(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Workers:
    """N engine worker processes."""

    def __init__(self, url: str, n: int, logdir: Path) -> None:
        self.procs = []
        for i in range(n):
            log = (logdir / f"worker-{n}-{i}.log").open("wb")
            argv = [sys.executable, "-m", "homevitals", "alerts", "run", "--db", url,
                    "--no-deliver", "--scale-out", "--lease-s", str(LEASE_S)]  # fmt: skip
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))

    def signal(self, signum: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _probe(pid: str, seq: int) -> Reading:
    return reading(pid, datetime.now(UTC).replace(microsecond=0), seq, glucose=2.6)


def _alert_seen(engine: sa.Engine, patients: list[str]) -> set[str]:
    a = tables.alerts.c
    with engine.connect() as conn:
        query = sa.select(a.patient_id).where(a.patient_id.in_(patients))
        return set(conn.execute(query).scalars())


def _steady(engine: sa.Engine, workers: Workers, args: argparse.Namespace,
            tag: str) -> dict[str, float]:  # fmt: skip
    """Readings at `rate`/s in batches every 100 ms, probes among them; a watcher thread
    notes when each probe's alert row is committed (polled every 10 ms)."""
    n_patients, rate, window_s, probes = args.patients, args.rate, args.window, args.probes
    cpu0 = [_cpu_s(p.pid) for p in workers.procs]
    per_batch = max(1, round(rate / 10))  # a batch every 100 ms, as a busy ingest commits
    total = int(rate * window_s)
    probe_every = max(1, total // probes)
    committed: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            waiting = [p for p in list(committed) if p not in arrived]
            if waiting:
                seen = _alert_seen(engine, waiting)
                now = time.perf_counter()
                for pid in seen:
                    arrived[pid] = now
            elif len(arrived) >= probes:
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    n = 0
    try:
        while n < total:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            batch, mine = [], []
            at = datetime.now(UTC).replace(microsecond=0)
            for _ in range(min(per_batch, total - n)):
                if n % probe_every == 0 and len(committed) + len(mine) < probes:
                    pid = f"{tag}-probe-{n}"
                    batch.append(reading(pid, at, 1, glucose=2.6))
                    mine.append(pid)
                else:
                    p = n % n_patients
                    batch.append(reading(f"p{p:06d}", at, 10_000 + n, glucose=6.0 + n % 30 / 10))
                n += 1
            write_batch(engine, batch, [], now=datetime.now(UTC))
            stamp = time.perf_counter()
            for pid in mine:
                committed[pid] = stamp
        elapsed = time.perf_counter() - started
        _wait(lambda: len(arrived) >= len(committed), "steady probes", 60)
    finally:
        done.set()
        watcher.join()
    cpu1 = [_cpu_s(p.pid) for p in workers.procs]
    latencies = sorted(arrived[p] - committed[p] for p in committed)
    return {
        "achieved": total / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "cpu_pct": 100 * (sum(cpu1) - sum(cpu0)) / (time.perf_counter() - started),
    }


def _run(engine: sa.Engine, url: str, n: int, args: argparse.Namespace, *, history_max: int,
         logdir: Path) -> dict[str, float]:  # fmt: skip
    a = args
    _reset(engine, history_max)
    started = time.perf_counter()
    workers = Workers(url, n, logdir)
    row: dict[str, float] = {"workers": n}
    try:

        def ready() -> bool:
            leases = _leases(engine)
            owners = {o for _, o, _ in leases}
            evaluated = all(c is not None for *_, c in leases)
            return None not in owners and len(owners) == n and evaluated

        _wait(ready, "start-up")
        # Every worker has loaded its window and evaluated once: one reading in each partition,
        # evaluated by its owner.
        before = _max_id(engine)
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        _write(engine, [reading(pid, at, 90_000, glucose=6.1) for pid in _one_per_partition()])
        _wait(_drained(engine, _partition_max_ids(engine, before)), "warm-up")
        row["startup_s"] = time.perf_counter() - started
        # Backlog, evaluated by the continuous path.
        workers.signal(signal.SIGSTOP)
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        # A patient's backlog readings a second apart: readings identical in time and value
        # are one reading to the engine (it merges them), which is not the backlog to measure.
        backlog = [
            reading(
                f"p{i % a.patients:06d}",
                now - timedelta(seconds=i // a.patients),
                50_000 + i,
                glucose=6.0 + i % 25 / 10,
            )
            for i in range(a.backlog)
        ]
        before = _max_id(engine)
        _write(engine, backlog)
        targets = _partition_max_ids(engine, before)
        t0 = time.perf_counter()
        workers.signal(signal.SIGCONT)
        _wait(_drained(engine, targets), "backlog")
        row["backlog_s"] = time.perf_counter() - t0
        row.update(_steady(engine, workers, a, f"s{n}"))
        if n == 2:
            owners = {p: o for p, o, _ in _leases(engine)}
            victim = workers.procs[0]
            victim_id = next(o for o in owners.values() if o and f":{victim.pid}:" in o)
            theirs = [f"f-{i}" for i in range(400) if owners[partition_of(f"f-{i}")] == victim_id]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed = time.perf_counter()
            write_batch(engine, [_probe(p, 1) for p in theirs[:10]], [], now=datetime.now(UTC))
            _wait(lambda: victim_id not in {o for _, o, _ in _leases(engine)}, "takeover", 120)
            row["takeover_s"] = time.perf_counter() - killed
            _wait(lambda: len(_alert_seen(engine, theirs[:10])) == 10, "failover", 120)
            row["failover_s"] = time.perf_counter() - killed
    finally:
        workers.stop()
    return row


def main(argv: list[str] | None = None) -> None:
    parser = common.parser("bench_scale", __doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.backlog, args.rate, args.window = 2_000, 10_000, 500.0, 8.0
    load_start = common.load_1min()
    work = Path(tempfile.mkdtemp(prefix="hv-bench-scale-"))
    os.chmod(work, 0o755)
    postgres = PostgresServer(work / "pg")
    postgres.start()
    rows = []
    try:
        url = postgres.create_database("bench_scale")
        ingest_migrate(url)
        alert_store.migrate(url)
        engine = make_engine(url)
        t0 = time.perf_counter()
        history = _history(args.patients, args.days, datetime.now(UTC))
        _write(engine, history)
        print(f"history: {len(history):,} readings in {time.perf_counter() - t0:.0f} s", flush=True)
        history_max = _max_id(engine)
        for n in (int(x) for x in args.workers.split(",")):
            load = common.load_1min()
            row = _run(engine, url, n, args, history_max=history_max, logdir=work)
            row["load"] = load
            print(row, flush=True)
            rows.append(row)
        engine.dispose()
    finally:
        postgres.stop()
    base = rows[0]
    lines = [
        f"## alerts: engine scale-out, 1/2/4 workers ({common.stamp()})",
        "",
        f"Machine: {common.machine(load_start)}. PostgreSQL 15 (fsync on) on the same box.",
        f"`python -m bench.bench_scale --patients {args.patients} --days {args.days} "
        f"--backlog {args.backlog} --rate {args.rate:g} --window {args.window:g}`: "
        f"{len(history):,} readings of history, {PARTITIONS} partitions, lease period "
        f"{LEASE_S:g} s, workers with their shipped defaults (woken by NOTIFY). Baseline: the "
        "1-worker row of the same run.",
        "",
        "| workers | load avg at start | start-up s | backlog readings/s (vs 1 worker) "
        "| steady readings/s (asked "
        f"{args.rate:g}) | probe p50 ms | p99 ms | workers' CPU % (sum) "
        "| failover: claimed / alerts s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rate = args.backlog / r["backlog_s"]
        base_rate = args.backlog / base["backlog_s"]
        fail = f"{r['takeover_s']:.1f} / {r['failover_s']:.1f}" if "failover_s" in r else "-"
        lines.append(
            f"| {r['workers']:.0f} | {r['load']:.1f} | {r['startup_s']:.1f} "
            f"| {rate:,.0f} ({rate / base_rate:.2f}x) | {r['achieved']:,.0f} "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
            f"| {r['cpu_pct']:.0f} | {fail} |"
        )
    lines += [
        "",
        "Failover: SIGKILL of one of 2 workers, then probes for patients of its partitions; "
        "seconds until the survivor held all its partitions, and until the probes' alerts were "
        f"committed (lease period {LEASE_S:g} s). Start-up: until every partition is leased "
        "and every worker has loaded its window and evaluated a reading in each partition.",
    ]
    shutil.rmtree(work, ignore_errors=True)
    common.write("\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
