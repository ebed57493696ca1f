"""Ingest throughput: readings/s from Mosquitto into PostgreSQL, next to raw paho QoS 1.

Run: `.venv/bin/python -m bench.bench_ingest [--quick] [--repeats N] [--processes 1,2]
[--profile DIR]` (about ten minutes: three runs of every case, each draining 50,000
single-reading messages or 200,000 readings in 100-reading messages, with one and two ingest
processes; `--quick`: two runs, one ingest process, 10,000 messages and 40,000 readings, about a
minute). Starts its own Mosquitto and PostgreSQL on free loopback ports, and appends the figures
with the machine to bench/RESULTS.md.

Method (the same for the baseline and for ingest): the consumers' persistent sessions are
created first, then the messages are published into the broker while nobody is connected
(they queue in the sessions), then the consumers connect and drain the queue. The clock runs
from the first message received (baseline) or first reading stored (ingest) to the last, so
publishing speed and process start-up are not measured.
- baseline: one plain paho-mqtt 2.x client, MQTT 5, QoS 1, automatic PUBACK, counting messages.
- ingest: `python -m ingest run` processes (1 or 2 on one shared subscription) committing to
  PostgreSQL (fsync on, synchronous_commit on); the bench polls the highest stored `id` every
  20 ms (an index look-up, not a count) and checks the count once at the end.
- parts of ingest alone, in the bench's own process, on the same payloads and batch sizes:
  validation (`decode_messages` and `prepare_batch`: JSON, checks, ids, COPY text; one thread,
  no I/O, the interpreter tuned as in the service), the write path
  (`ingest.store.write_on` with prepared batches on one connection, one transaction each),
  and a plain COPY of the same rows into `readings` with one commit per batch
  (what PostgreSQL itself takes for these rows with fsync on, the floor of any write path).
Each run measures every case once, baselines and ingest alternating, so a change of load hits
both; the table gives the median and the spread of the runs. Next to each rate, the CPU seconds
each process spent in the same window (from /proc: the ingest processes, Mosquitto, PostgreSQL
with all its backends, and the bench process, which is the consumer in the baseline and the
parts), per 100,000 readings and as cores busy (CPU s per wall s): on a 2-core box, a process
near 1.0 is the bottleneck, and together they cannot pass 2.0.
`--profile DIR` adds one run of one ingest process per message size with py-spy attached
(`--idle --threads`, raw collapsed stacks in DIR; needs `py-spy` on PATH or beside Python);
those runs are reported apart, not in the table.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench import common
from bench.procstat import cpu_s, tree_cpu_s
from devices.wire import encode_batch, readings_topic
from ingest.consumer import Inbound, decode_messages
from ingest.rows import COPY_COLUMNS
from ingest.service import tune_interpreter
from ingest.store import (
    HeldConnection,
    PreparedBatch,
    make_engine,
    migrate,
    prepare_batch,
    write_on,
)
from tests.ingest.support import make_reading
from tests.support.record import enrol
from tests.support.servers import MosquittoServer, PostgresServer

ROOT = Path(__file__).parents[1]
PAHO_VERSION = version("paho-mqtt")
PER_BATCH = 100
# Messages per ingest batch (HV_INGEST_BATCH_MAX_MESSAGES): the readings of one commit.
BATCH_MESSAGES = {1: 500, PER_BATCH: 20}


@dataclass(frozen=True, slots=True)
class Sizes:
    """Messages per case and runs of a bench run."""

    single: int
    batched: int
    repeats: int
    processes: str


FULL = Sizes(single=50_000, batched=2_000, repeats=3, processes="1,2")
QUICK = Sizes(single=10_000, batched=400, repeats=2, processes="1")
Payloads = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Drain:
    """One measured drain: readings, wall seconds, CPU seconds by process."""

    readings: int
    wall_s: float
    cpu_s: dict[str, float]

    @property
    def rate(self) -> float:
        """Readings per second."""
        return self.readings / self.wall_s


@dataclass(slots=True)
class Meter:
    """Wall clock and CPU seconds of the processes in the pipeline, sampled together."""

    mosquitto: int
    postgres: int
    ingest: Sequence[int] = ()

    def sample(self) -> tuple[float, dict[str, float]]:
        """(perf_counter, CPU seconds by process) now."""
        own = os.times()
        return time.perf_counter(), {
            "bench": own.user + own.system,
            "ingest": sum(cpu_s(p) for p in self.ingest),
            "mosquitto": cpu_s(self.mosquitto),
            "postgres": tree_cpu_s(self.postgres),
        }

    def drain(
        self,
        readings: int,
        start: tuple[float, dict[str, float]],
        end: tuple[float, dict[str, float]],
    ) -> Drain:
        """The drain between two samples."""
        cpu = {k: end[1][k] - start[1][k] for k in end[1]}
        return Drain(readings, end[0] - start[0], cpu)


def _payloads(count: int, per_message: int, gateways: int = 8) -> Payloads:
    out = []
    for m in range(count):
        gw = f"gw{m % gateways}"
        base = (m // gateways) * per_message
        readings = [
            make_reading(gw, f"p-{gw}", f"SN-{gw}-{m % 3}", base + i) for i in range(per_message)
        ]
        out.append((readings_topic(gw), encode_batch(gw, readings)))
    return out


def _pairs(payloads: Payloads) -> set[tuple[str, str]]:
    gateways = {topic.split("/")[3] for topic, _ in payloads}
    return {(gw, f"p-{gw}") for gw in gateways}


def _publish(port: int, payloads: Payloads) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
    for info in infos:
        info.wait_for_publish(300)
    client.disconnect()
    client.loop_stop()


def _session(port: int, client_id: str, clean: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    props.ReceiveMaximum = 1000
    client.connect("127.0.0.1", port, clean_start=clean, properties=props)
    return client


def raw_paho(meter: Meter, port: int, payloads: Payloads, per_message: int, run: int) -> Drain:
    """A bare paho QoS 1 subscriber draining its queued session (counted in readings)."""
    group = f"raw{per_message}r{run}"
    sub = _session(port, group, clean=True)
    sub.loop_start()
    sub.subscribe(f"$share/{group}/hv/v1/gw/+/readings", qos=1)
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    _publish(port, payloads)
    done = threading.Event()
    marks: list[tuple[float, dict[str, float]]] = []
    received = [0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] == 1 or received[0] == len(payloads):
            marks.append(meter.sample())
        if received[0] == len(payloads):
            done.set()

    sub = _session(port, group, clean=False)
    sub.on_message = on_message
    sub.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"raw subscriber got {received[0]} of {len(payloads)}")
    sub.disconnect()
    sub.loop_stop()
    return meter.drain((len(payloads) - 1) * per_message, marks[0], marks[-1])


def _launch(  # noqa: PLR0917
    db_url: str, port: int, client_id: str, group: str, batch: int, log: Path
) -> subprocess.Popen[bytes]:
    """Start `python -m ingest run` with its log in `log`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_INGEST_")}
    env.update(
        {
            "HV_INGEST_DB_URL": db_url,
            "HV_INGEST_MQTT_PORT": str(port),
            "HV_INGEST_CLIENT_ID": client_id,
            "HV_INGEST_SHARE_GROUP": group,
            "HV_INGEST_BATCH_MAX_MESSAGES": str(batch),
            "HV_INGEST_BATCH_MAX_WAIT_MS": "50",
            "HV_INGEST_MIGRATE_ON_START": "false",
        }
    )
    log.write_bytes(b"")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "run", "--log-level", "INFO"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc


def _wait_subscribed(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while "subscribed to" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"ingest did not subscribe:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def _start_all(  # noqa: PLR0917
    db_url: str, port: int, ids: list[str], group: str, batch: int, logs: list[Path]
) -> list[subprocess.Popen[bytes]]:
    procs = [_launch(db_url, port, c, group, batch, log) for c, log in zip(ids, logs, strict=True)]
    for proc, log in zip(procs, logs, strict=True):
        _wait_subscribed(proc, log)
    return procs


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _dsn(url: str) -> str:
    """A libpq connection string from the SQLAlchemy URL of `PostgresServer`."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(found, os.X_OK):
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return found


Sample = tuple[float, dict[str, float]]


def _wait_stored(
    conn: psycopg.Connection[tuple[int]], expected: int, meter: Meter
) -> tuple[Sample, int, Sample]:
    """Poll until `expected` readings are stored: (sample at the first, readings then, end)."""
    first: tuple[Sample, int] | None = None
    previous, stalled_since = -1, time.monotonic()
    while True:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()
        n = int(row[0]) if row else 0
        if n and first is None:
            first = (meter.sample(), n)
        if n >= expected:
            end = meter.sample()
            count = conn.execute("SELECT count(*) FROM readings").fetchone()
            if first is not None and count is not None and int(count[0]) >= expected:
                return first[0], first[1], end
        if n != previous:
            previous, stalled_since = n, time.monotonic()
        elif time.monotonic() - stalled_since > 60:
            raise RuntimeError(f"ingest stalled at {n} of {expected} readings")
        time.sleep(0.02)


@dataclass(slots=True)
class Bench:
    """The servers of one bench run and where its files go."""

    work: Path
    broker: MosquittoServer
    postgres: PostgresServer
    meter: Meter
    profile: Path | None = None

    def fresh_database(self, name: str) -> str:
        """A new migrated database (the same tables, indexes and trigger as in production)."""
        db_url = self.postgres.create_database(name)
        migrate(db_url)
        return db_url

    def ingest(self, payloads: Payloads, per_message: int, processes: int, name: str) -> Drain:
        """Readings/s that `processes` ingest replicas commit from their queued sessions."""
        db_url = self.fresh_database(name)
        engine = make_engine(db_url)
        # Every hub enrolled for its patient: ingest checks each batch against the record.
        enrol(engine, _pairs(payloads))
        engine.dispose()
        port, batch = self.broker.port, BATCH_MESSAGES[per_message]
        ids = [f"{name}-{i}" for i in range(processes)]
        logs = [self.work / f"{cid}.log" for cid in ids]
        _stop(_start_all(db_url, port, ids, name, batch, logs))  # sessions stay on the broker
        _publish(port, payloads)
        expected = len(payloads) * per_message
        procs: list[subprocess.Popen[bytes]] = []
        spy: subprocess.Popen[bytes] | None = None
        try:
            procs = _start_all(db_url, port, ids, name, batch, logs)
            self.meter.ingest = [p.pid for p in procs]
            if self.profile is not None:
                spy = _spy(procs[0].pid, self.profile / f"{name}.txt")
            with psycopg.connect(_dsn(db_url), autocommit=True) as conn:
                start, first_n, end = _wait_stored(conn, expected, self.meter)
            return self.meter.drain(expected - first_n, start, end)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(120)
            _stop(procs)
            self.meter.ingest = ()

    def validate(self, payloads: Payloads, per_message: int) -> tuple[Drain, list[PreparedBatch]]:
        """Ingest's validation stage alone, one thread: payloads to prepared batches."""
        messages = [Inbound(i, 1, t, p, False, 1) for i, (t, p) in enumerate(payloads, 1)]
        size = BATCH_MESSAGES[per_message]
        now = datetime.now(UTC)
        prepared = []
        threshold = gc.get_threshold()
        tune_interpreter()  # as `python -m ingest run` does before it consumes
        try:
            start = self.meter.sample()
            for i in range(0, len(messages), size):
                decoded = decode_messages(messages[i : i + size], now)
                prepared.append(prepare_batch(decoded.readings, now=now, copy=True))
            end = self.meter.sample()
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        stored = sum(len(p.readings) for p in prepared)
        if stored != len(payloads) * per_message:
            raise RuntimeError(f"validation kept {stored} of {len(payloads) * per_message}")
        return self.meter.drain(stored, start, end), prepared

    def write_path(self, prepared: Sequence[PreparedBatch], name: str) -> Drain:
        """`ingest.store.write_on` alone: one transaction per prepared batch, one connection."""
        engine = make_engine(self.fresh_database(name))
        held = HeldConnection(engine)
        try:
            conn = held.get()
            start = self.meter.sample()
            for batch in prepared:
                write_on(conn, batch, [], now=batch.stored_at)
            end = self.meter.sample()
        finally:
            held.close()
            engine.dispose()
        return self.meter.drain(sum(len(p.readings) for p in prepared), start, end)

    def plain_copy(self, prepared: Sequence[PreparedBatch], name: str) -> Drain:
        """The same rows COPYed straight into `readings`, one commit per batch."""
        sql = f"COPY readings ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        with psycopg.connect(_dsn(self.fresh_database(name)), autocommit=True) as conn:
            start = self.meter.sample()
            for batch in prepared:
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(sql) as copy:
                    copy.write(batch.copy_data or b"")
            end = self.meter.sample()
        return self.meter.drain(sum(len(p.readings) for p in prepared), start, end)


def _spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    argv = [_py_spy(), "record", "--pid", str(pid), "--idle", "--threads", "--nonblocking"]
    argv += ["--rate", "100", "--format", "raw", "--output", str(out)]
    with out.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)


def _labels(per_message: int, processes: Sequence[int]) -> dict[str, tuple[str, str | None]]:
    """Case key -> (table label, baseline case key) for one message size."""
    size = f"{per_message}-reading messages"
    commit = BATCH_MESSAGES[per_message] * per_message
    out: dict[str, tuple[str, str | None]] = {
        f"raw-{per_message}": (f"raw paho QoS 1 (baseline), {size}", None)
    }
    for n in processes:
        label = f"ingest, {n} process{'es' if n > 1 else ''}, {size}"
        out[f"x{n}-{per_message}"] = (label, f"raw-{per_message}")
    out[f"validate-{per_message}"] = (
        f"part: validation alone ({size}, {BATCH_MESSAGES[per_message]} per batch, 1 thread)",
        None,
    )
    out[f"write-{per_message}"] = (f"part: write path alone ({commit:,} readings per commit)", None)
    out[f"copy-{per_message}"] = (
        f"floor: plain COPY into readings ({commit:,} rows per commit)",
        None,
    )
    return out


WHO = ("ingest", "mosquitto", "postgres", "bench")


def _row(label: str, drains: list[Drain], base: list[Drain] | None) -> str:
    rates = [d.rate for d in drains]
    mid = statistics.median(rates)
    share = f"{mid / statistics.median(d.rate for d in base):.0%}" if base else ""
    per_100k = [statistics.median(d.cpu_s[w] / d.readings * 1e5 for d in drains) for w in WHO]
    busy = [statistics.median(d.cpu_s[w] / d.wall_s for d in drains) for w in WHO]
    total = statistics.median(sum(d.cpu_s.values()) / d.wall_s for d in drains)
    return (
        f"| {label} | {mid:,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) | {share} | "
        f"{statistics.median(d.wall_s for d in drains):.2f} | "
        + " / ".join(f"{v:.2f}" for v in per_100k)
        + " | "
        + " / ".join(f"{v:.2f}" for v in busy)
        + f" / {total:.2f} | "
        + ", ".join(f"{r:,.0f}" for r in rates)
        + " |"
    )


def _postmaster_pid(postgres: PostgresServer) -> int:
    return int((postgres.workdir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _measure(  # noqa: PLR0917
    bench: Bench,
    payloads: dict[int, Payloads],
    processes: Sequence[int],
    repeats: int,
    runs: dict[str, list[Drain]],
    loads: list[str],
) -> None:
    """Every case once per run, baselines and ingest alternating."""
    for run in range(repeats):
        before = common.load_1min()
        for per_message, sent in payloads.items():
            key = f"{per_message}r{run}"
            runs.setdefault(f"raw-{per_message}", []).append(
                raw_paho(bench.meter, bench.broker.port, sent, per_message, run)
            )
            for n in processes:
                drain = bench.ingest(sent, per_message, n, f"x{n}b{key}")
                runs.setdefault(f"x{n}-{per_message}", []).append(drain)
            checked, prepared = bench.validate(sent, per_message)
            runs.setdefault(f"validate-{per_message}", []).append(checked)
            runs.setdefault(f"write-{per_message}", []).append(
                bench.write_path(prepared, f"w{key}")
            )
            runs.setdefault(f"copy-{per_message}", []).append(bench.plain_copy(prepared, f"c{key}"))
            del prepared
        loads.append(f"run {run + 1}: {before:.1f} to {common.load_1min():.1f}")
        print(f"run {run + 1} of {repeats} done ({loads[-1]})", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the ingest benchmark and append the figures to bench/RESULTS.md."""
    parser = common.parser("bench_ingest", __doc__)
    parser.add_argument("--repeats", type=int, help="runs of every case (3; --quick: 2)")
    parser.add_argument(
        "--processes", help="ingest process counts, comma-separated (1,2; --quick: 1)"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="add py-spy profiled runs, stacks in DIR"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeats = int(args.repeats or sizes.repeats)
    processes = [int(n) for n in str(args.processes or sizes.processes).split(",")]
    load_start = common.load_1min()
    work = Path(tempfile.mkdtemp(prefix="hv-bench-ingest-"))
    broker = MosquittoServer(work / "mosquitto")
    postgres = PostgresServer(work / "pg")
    os.chmod(work, 0o755)
    broker.start()
    postgres.start()
    try:
        assert broker.process is not None and broker.process.proc is not None
        meter = Meter(broker.process.proc.pid, _postmaster_pid(postgres))
        bench = Bench(work, broker, postgres, meter)
        payloads = {
            1: _payloads(sizes.single, 1),
            PER_BATCH: _payloads(sizes.batched, PER_BATCH),
        }
        runs: dict[str, list[Drain]] = {}
        loads: list[str] = []
        _measure(bench, payloads, processes, repeats, runs, loads)
        profiled = _profiled(bench, args.profile, payloads) if args.profile else []
        common.write(
            _report(args, sizes, repeats, processes, runs, loads, load_start, profiled), args
        )
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def _profiled(bench: Bench, out: Path, payloads: dict[int, Payloads]) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    bench.profile = out
    lines = []
    try:
        for per_message, sent in payloads.items():
            drain = bench.ingest(sent, per_message, 1, f"profile-x1-{per_message}")
            lines.append(
                f"- profiled ({out}/profile-x1-{per_message}.txt): one process, "
                f"{per_message}-reading messages: {drain.rate:,.0f} readings/s, ingest "
                f"{drain.cpu_s['ingest'] / drain.wall_s:.2f} cores busy"
            )
    finally:
        bench.profile = None
    return lines


def _report(  # noqa: PLR0917
    args: object,
    sizes: Sizes,
    repeats: int,
    processes: Sequence[int],
    runs: dict[str, list[Drain]],
    loads: list[str],
    load_start: float,
    profiled: list[str],
) -> str:
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    mosq_version = (mosq.stdout or mosq.stderr).splitlines()[0].strip()
    flags = " --quick" if getattr(args, "quick", False) else ""
    lines = [
        "",
        f"## ingest: Mosquitto to PostgreSQL ({common.stamp()})",
        "",
        f"Machine: {common.machine(load_start)}; paho-mqtt {PAHO_VERSION}, {mosq_version}, "
        f"PostgreSQL 15 (fsync on). Load (1 min) per run: {'; '.join(loads)}.",
        f"{sizes.single:,} single-reading messages; {sizes.batched:,} messages of "
        f"{PER_BATCH} readings. {repeats} runs per case, median (min-max); "
        f"`python -m bench.bench_ingest{flags}`. CPU per 100,000 readings (s) and cores busy "
        "(CPU s per wall s) of: ingest / mosquitto / postgres (all backends) / the bench "
        "process (the consumer in the baselines and the parts).",
        "",
        "| case | readings/s, median (min-max) | vs baseline | wall s | "
        "CPU s per 100k readings | cores busy (+ all) | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for per_message in (1, PER_BATCH):
        for key, (label, base_key) in _labels(per_message, processes).items():
            lines.append(_row(label, runs[key], runs[base_key] if base_key else None))
    lines += ["", *profiled] if profiled else []
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
