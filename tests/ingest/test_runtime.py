"""Ingest as deployed: the SQLite default end to end, `--workers N`, and a database outage."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.wire import ingest_status_topic
from ingest.mirror import cursor_position
from ingest.read_port import last_reading_id
from ingest.store import make_engine, migrate, write_batch
from tests.ingest.support import (
    GatewaySim,
    IngestProcess,
    batch_payload,
    check_delivery,
    drain,
    end_session,
    expected_samples,
    ingest_env,
    make_reading,
    reading_count,
    vm_samples,
    wait_until,
)
from tests.support.record import enrol_readings
from tests.support.servers import MosquittoServer, PostgresServer, VictoriaMetricsServer


def test_sqlite_default_stores_receipts_and_mirrors(
    mosquitto: MosquittoServer, victoria_metrics: VictoriaMetricsServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = f"sqlite:///{tmp_path / 'homevitals.db'}"
    env = ingest_env(
        url,
        mosquitto.port,
        f"g{tag}",
        f"ingest-{tag}",
        tsdb_url=victoria_metrics.url,
        tsdb_token="test-token-0123456789abcdef",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    ingest.start()  # migrates the file on start
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    engine = make_engine(url)
    try:
        readings = [make_reading(gw.gateway_id, f"p{tag}", f"SN{tag}", i) for i in range(600)]
        enrol_readings(engine, readings[:1])
        for i in range(0, 600, 30):
            gw.publish(batch_payload(gw.gateway_id, readings[i : i + 30]))
        gw.publish(batch_payload(gw.gateway_id, readings[:30]))  # a resend: deduplicated
        drain([gw], timeout_s=60)
        report = check_delivery(engine, {r.reading_id for r in readings})
        assert report.ok and reading_count(engine) == 600
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 30, "the mirror")
        victoria_metrics.force_flush()
        samples = vm_samples(victoria_metrics.url, f"p{tag}")
        assert set(samples) == expected_samples(readings) and set(samples.values()) == {1}
    finally:
        engine.dispose()
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")


def test_workers_option_runs_replicas_and_sigterm_stops_them(
    mosquitto: MosquittoServer, pg_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(pg_url, mosquitto.port, f"g{tag}", f"w{tag}"), workers=2
    )
    ingest.start()
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    engine = make_engine(pg_url)
    try:
        readings = [make_reading(gw.gateway_id, f"p{tag}", f"SN{tag}", i) for i in range(1000)]
        enrol_readings(engine, readings[:1])
        for i in range(0, 1000, 10):
            gw.publish(batch_payload(gw.gateway_id, readings[i : i + 10]), wait=False)
        drain([gw], timeout_s=60)
        assert check_delivery(engine, {r.reading_id for r in readings}).ok
        ingest.stop()
        assert ingest.proc is not None and ingest.proc.returncode == 0
        log = ingest.log()
        for worker in (f"w{tag}-0", f"w{tag}-1"):
            assert f"{worker}: stopping" in log, log
        shares = [int(n) for n in re.findall(r"stopping: IngestStats\([^)]*?\bmessages=(\d+)", log)]
        assert len(shares) == 2 and sum(shares) >= 100
    finally:
        engine.dispose()
        gw.close()
        ingest.stop()
        for worker in (f"w{tag}-0", f"w{tag}-1"):
            end_session(mosquitto.port, worker)


def test_database_outage_holds_messages_unacknowledged_and_loses_nothing(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    # Our own PostgreSQL, to SIGKILL it. No resend from the gateway: ingest alone must hold on.
    workdir = Path(tempfile.mkdtemp(prefix="hv-ingest-pg-"))
    postgres = PostgresServer(workdir)
    postgres.start()
    tag = uuid.uuid4().hex[:8]
    url = postgres.create_database("outage")
    migrate(url)
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(url, mosquitto.port, f"g{tag}", f"ingest-{tag}")
    )
    ingest.start()
    gw = GatewaySim(mosquitto.port, f"gw-{tag}", resend=False)
    engine = make_engine(url)
    try:
        readings = [make_reading(gw.gateway_id, f"p{tag}", f"SN{tag}", i) for i in range(2000)]
        enrol_readings(engine, readings[:1])

        def stream() -> None:
            for i in range(0, 2000, 50):
                gw.publish(batch_payload(gw.gateway_id, readings[i : i + 50]))
                time.sleep(0.05)

        sender = threading.Thread(target=stream)
        sender.start()
        wait_until(lambda: reading_count(engine) >= 300, 30, "the stream to be under way")
        postgres.kill()
        time.sleep(2.0)
        postgres.start()
        sender.join(30)
        drain([gw], timeout_s=60)
        report = check_delivery(engine, {r.reading_id for r in readings})
        assert report.ok, f"missing {len(report.missing)}, duplicated {report.duplicate_rows}"
        assert "(retrying)" in ingest.log()
        assert not ingest.exited()
    finally:
        engine.dispose()
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_migrate_and_mirror_commands(
    victoria_metrics: VictoriaMetricsServer, pg_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_INGEST_")}
    env.update(
        {
            "HV_INGEST_DB_URL": pg_url,
            "HV_INGEST_TSDB_URL": victoria_metrics.url,
            "HV_INGEST_TSDB_TOKEN": "test-token-0123456789abcdef",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "newest revision" in done.stdout
    tag = uuid.uuid4().hex[:8]
    readings = [make_reading("gw-1", f"p{tag}", f"SN{tag}", i) for i in range(300)]
    engine = make_engine(pg_url)
    mirror = subprocess.Popen(
        [sys.executable, "-m", "ingest", "mirror"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        write_batch(engine, readings, [], now=datetime.now(UTC))
        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 30, "the mirror command")
        victoria_metrics.force_flush()
        assert set(vm_samples(victoria_metrics.url, f"p{tag}")) == expected_samples(readings)
    finally:
        mirror.send_signal(signal.SIGTERM)
        assert mirror.wait(20) == 0
        engine.dispose()


def test_configuration_errors_name_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_INGEST_")}
    env["HV_INGEST_TSDB_URL"] = "http://127.0.0.1:1"
    env["HV_INGEST_TSDB_TOKEN"] = "changeme"
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "run"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "HV_INGEST_TSDB_TOKEN: is still a placeholder value" in done.stderr


def _retained(port: int, topic: str) -> bytes | None:
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    done.wait(3)
    client.disconnect()
    client.loop_stop()
    return got[-1] if got else None


def test_ingest_announces_itself_online_with_a_last_will(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    client_id = f"ingest-{tag}"
    url = f"sqlite:///{tmp_path / 'hv.db'}"
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(url, mosquitto.port, f"g{tag}", client_id)
    )
    topic = ingest_status_topic(client_id)
    try:
        ingest.start()
        wait_until(lambda: _retained(mosquitto.port, topic) == b"online", 15, "online")
        assert ingest.proc is not None
        ingest.proc.send_signal(signal.SIGKILL)
        ingest.wait_killed()
        wait_until(lambda: _retained(mosquitto.port, topic) == b"offline", 15, "the last will")
        ingest.start()
        wait_until(lambda: _retained(mosquitto.port, topic) == b"online", 15, "online again")
        ingest.stop()
        assert _retained(mosquitto.port, topic) == b"offline"  # said on a clean stop
    finally:
        ingest.stop()
        end_session(mosquitto.port, client_id)
