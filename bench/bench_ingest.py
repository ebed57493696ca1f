"""Ingest throughput: readings/s from Mosquitto into PostgreSQL, next to raw paho QoS 1.

Run: `.venv/bin/python -m bench.bench_ingest [--quick]` (about five minutes: three runs per
case; `--quick`: one run of each case with a quarter of the messages, about a minute).
Starts its own Mosquitto and PostgreSQL on free loopback ports, and appends the figures with
the machine to bench/RESULTS.md.

Method (the same for the baseline and for ingest): the consumers' persistent sessions are
created first, then the messages are published into the broker while nobody is connected
(they queue in the sessions), then the consumers connect and drain the queue. The clock runs
from the first message received (baseline) or first reading stored (ingest) to the last, so
publishing speed and process start-up are not measured.
- baseline: one plain paho-mqtt 2.x client, MQTT 5, QoS 1, automatic PUBACK, counting messages.
- ingest: `python -m ingest run` processes (1 or 2 on one shared subscription) committing to
  PostgreSQL (fsync on, synchronous_commit on), polled for the row count every 20 ms.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench import common
from devices.wire import encode_batch, readings_topic
from ingest.store import make_engine, migrate
from tests.ingest.support import make_reading
from tests.support.record import enrol
from tests.support.servers import MosquittoServer, PostgresServer

ROOT = Path(__file__).parents[1]
PAHO_VERSION = version("paho-mqtt")
SINGLE_MESSAGES = 20_000
BATCHED_MESSAGES = 600
PER_BATCH = 100
LOAD_AT_START = [0.0]
REPEATS = 3


def _payloads(count: int, per_message: int, gateways: int = 8) -> list[tuple[str, bytes]]:
    out = []
    for m in range(count):
        gw = f"gw{m % gateways}"
        base = (m // gateways) * per_message
        readings = [
            make_reading(gw, f"p-{gw}", f"SN-{gw}-{m % 3}", base + i) for i in range(per_message)
        ]
        out.append((readings_topic(gw), encode_batch(gw, readings)))
    return out


def _pairs(payloads: list[tuple[str, bytes]]) -> set[tuple[str, str]]:
    gateways = {topic.split("/")[3] for topic, _ in payloads}
    return {(gw, f"p-{gw}") for gw in gateways}


def _publish(port: int, payloads: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def _session(client_id: str, clean: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    props.ReceiveMaximum = 1000
    client.connect("127.0.0.1", BROKER_PORT[0], clean_start=clean, properties=props)
    return client


BROKER_PORT = [0]


def raw_paho_rate(port: int, payloads: list[tuple[str, bytes]], run: int) -> float:
    """Messages/s a bare paho QoS 1 subscriber drains from its queued session."""
    BROKER_PORT[0] = port
    group = f"raw{len(payloads)}r{run}"
    sub = _session(group, clean=True)
    sub.loop_start()
    sub.subscribe(f"$share/{group}/hv/v1/gw/+/readings", qos=1)
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    _publish(port, payloads)
    done = threading.Event()
    stamps: list[float] = []

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) == len(payloads):
            done.set()

    sub = _session(group, clean=False)
    sub.on_message = on_message
    sub.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"raw subscriber got {len(stamps)} of {len(payloads)}")
    sub.disconnect()
    sub.loop_stop()
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


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


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one())


def ingest_rate(  # noqa: PLR0917
    workdir: Path,
    postgres: PostgresServer,
    port: int,
    payloads: list[tuple[str, bytes]],
    per_message: int,
    processes: int,
    batch: int,
    run: int,
) -> float:
    """Readings/s that `processes` ingest replicas commit from their queued sessions."""
    name = f"b{per_message}x{processes}r{run}"
    db_url = postgres.create_database(name)
    migrate(db_url)
    engine = make_engine(db_url)
    # Every hub enrolled for its patient: ingest checks each batch against the record.
    enrol(engine, {(gw, patient) for gw, patient in _pairs(payloads)})
    ids = [f"{name}-{i}" for i in range(processes)]
    logs = [workdir / f"{cid}.log" for cid in ids]
    procs = _start_all(db_url, port, ids, name, batch, logs)
    _stop(procs)  # the sessions (with the shared subscription) stay on the broker
    _publish(port, payloads)
    expected = len(payloads) * per_message
    procs = []
    try:
        procs = _start_all(db_url, port, ids, name, batch, logs)
        first = last = None
        stalled_since = time.monotonic()
        previous = -1
        while True:
            n = _count(engine)
            now = time.perf_counter()
            if n != previous:
                previous, stalled_since = n, time.monotonic()
            elif time.monotonic() - stalled_since > 60:
                raise RuntimeError(f"ingest stalled at {n} of {expected} readings")
            if n and first is None:
                first = (now, n)
            if n >= expected:
                last = (now, n)
                break
            time.sleep(0.02)
        return (last[1] - first[1]) / (last[0] - first[0])
    finally:
        _stop(procs)
        engine.dispose()


def _machine() -> str:
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    return (
        f"{common.machine(LOAD_AT_START[0])}; paho-mqtt {PAHO_VERSION}, "
        f"{(mosq.stdout or mosq.stderr).splitlines()[0].strip()}, PostgreSQL 15 (fsync on)"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the ingest benchmark and append the figures to bench/RESULTS.md."""
    global SINGLE_MESSAGES, BATCHED_MESSAGES, REPEATS
    args = common.parser("bench_ingest", __doc__).parse_args(argv)
    if args.quick:
        SINGLE_MESSAGES, BATCHED_MESSAGES, REPEATS = 5_000, 150, 1
    LOAD_AT_START[0] = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="hv-bench-ingest-"))
    broker = MosquittoServer(work / "mosquitto")
    postgres = PostgresServer(work / "pg")
    os.chmod(work, 0o755)
    broker.start()
    postgres.start()
    try:
        single = _payloads(SINGLE_MESSAGES, 1)
        batched = _payloads(BATCHED_MESSAGES, PER_BATCH)
        runs: dict[str, list[float]] = {}
        for run in range(REPEATS):
            runs.setdefault("raw1", []).append(raw_paho_rate(broker.port, single, run))
            rate = raw_paho_rate(broker.port, batched, run) * PER_BATCH
            runs.setdefault("raw100", []).append(rate)
            for n in (1, 2):
                rate = ingest_rate(work, postgres, broker.port, single, 1, n, batch=500, run=run)
                runs.setdefault(f"x{n}-1", []).append(rate)
                rate = ingest_rate(
                    work, postgres, broker.port, batched, PER_BATCH, n, batch=20, run=run
                )
                runs.setdefault(f"x{n}-100", []).append(rate)
        labels = {
            "raw1": ("raw paho QoS 1 (baseline), 1-reading messages", "raw1"),
            "raw100": ("raw paho QoS 1 (baseline), 100-reading messages", "raw100"),
            "x1-1": ("ingest, 1 process, 1-reading messages", "raw1"),
            "x1-100": ("ingest, 1 process, 100-reading messages", "raw100"),
            "x2-1": ("ingest, 2 processes, 1-reading messages", "raw1"),
            "x2-100": ("ingest, 2 processes, 100-reading messages", "raw100"),
        }
        lines = [
            "",
            f"## ingest: Mosquitto to PostgreSQL ({common.stamp()})",
            "",
            f"Machine: {_machine()}. {REPEATS} runs per case, median (min-max).",
            f"{SINGLE_MESSAGES} single-reading messages; {BATCHED_MESSAGES} messages of "
            f"{PER_BATCH} readings. `python -m bench.bench_ingest"
            f"{' --quick' if args.quick else ''}`.",
            "",
            "| case | readings/s, median (min-max) | vs baseline median |",
            "|---|---|---|",
        ]
        for key, (label, base_key) in labels.items():
            values = runs[key]
            mid, base = statistics.median(values), statistics.median(runs[base_key])
            lines.append(
                f"| {label} | {mid:,.0f} ({min(values):,.0f}-{max(values):,.0f}) | "
                f"{mid / base:.0%} |"
            )
        common.write("\n".join(lines) + "\n", args)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
