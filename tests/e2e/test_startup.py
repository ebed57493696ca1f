"""Every long-running server process (ingest, the rules engine, the delivery worker, the API)
waits for the record store at start-up, then runs.

The database is behind our fault proxy, not listening (connection refused) when each process
starts; after a few seconds it comes up. Each process must log that it waits, stay alive, and
do its work once the database answers. A wrong password is not waited for.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from careteam.secrets import new_key_entry
from ingest.store import make_engine
from tests.ingest.support import (
    GatewaySim,
    batch_payload,
    drain,
    end_session,
    make_reading,
    reading_count,
    wait_until,
)
from tests.support.fault_proxy import FaultProxy, Mode, free_port
from tests.support.record import enrol_readings
from tests.support.servers import MosquittoServer, PostgresServer

ROOT = Path(__file__).parents[2]


@pytest.fixture
def db_behind_proxy(postgres: PostgresServer, pg_url: str) -> Iterator[tuple[str, FaultProxy]]:
    with FaultProxy(postgres.port) as proxy:
        proxy.set_mode(Mode.REFUSE)
        yield pg_url.replace(f":{postgres.port}/", f":{proxy.port}/"), proxy


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**clean, **env}, cwd=ROOT
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _waits_then_runs(
    proc: subprocess.Popen[bytes], log_path: Path, proxy: FaultProxy, process: str
) -> None:
    wait_until(lambda: "waiting for the record store" in log_path.read_text(), 30, "a wait line")
    time.sleep(1.5)  # at least one retry while the database is still down
    assert proc.poll() is None, log_path.read_text()
    text = log_path.read_text()
    assert f"{process}: waiting for the record store postgresql 127.0.0.1:{proxy.port}/" in text
    assert "attempt 2" in text, text
    proxy.set_mode(Mode.PASS)
    wait_until(lambda: "record store" in log_path.read_text().split("attempt 2")[-1], 30, "up")


def test_ingest_waits_for_the_database_then_stores(
    db_behind_proxy: tuple[str, FaultProxy], mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    url, proxy = db_behind_proxy
    tag = uuid.uuid4().hex[:8]
    env = {
        "HV_INGEST_DB_URL": url,
        "HV_INGEST_MQTT_PORT": str(mosquitto.port),
        "HV_INGEST_SHARE_GROUP": f"g{tag}",
        "HV_INGEST_CLIENT_ID": f"ingest-{tag}",
    }
    log_path = tmp_path / "ingest.log"
    proc = _spawn([sys.executable, "-m", "ingest", "run"], env, log_path)
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    try:
        _waits_then_runs(proc, log_path, proxy, "ingest")
        wait_until(lambda: "subscribed to" in log_path.read_text(), 30, "ingest to subscribe")
        readings = [make_reading(gw.gateway_id, f"p{tag}", f"SN{tag}", i) for i in range(20)]
        enrol_readings(url, readings[:1])
        gw.publish(batch_payload(gw.gateway_id, readings))
        drain([gw], timeout_s=30)
        engine = make_engine(url)
        try:
            assert reading_count(engine) == 20
        finally:
            engine.dispose()
    finally:
        gw.close()
        _stop(proc)
        end_session(mosquitto.port, f"ingest-{tag}")


def test_the_rules_engine_waits_for_the_database_then_migrates(
    db_behind_proxy: tuple[str, FaultProxy], tmp_path: Path
) -> None:
    url, proxy = db_behind_proxy
    log_path = tmp_path / "alerts.log"
    argv = [sys.executable, "-m", "homevitals", "alerts", "run", "--db", url, "--interval-s", "0.5"]
    proc = _spawn(argv, {}, log_path)
    try:
        _waits_then_runs(proc, log_path, proxy, "alerts engine")
        engine = make_engine(url)
        try:
            wait_until(
                lambda: "alert_engine_cursor" in sa.inspect(engine).get_table_names(), 30, "tables"
            )
        finally:
            engine.dispose()
        assert proc.poll() is None, log_path.read_text()
    finally:
        _stop(proc)


def test_the_delivery_worker_waits_for_the_database_then_starts(
    db_behind_proxy: tuple[str, FaultProxy], tmp_path: Path
) -> None:
    url, proxy = db_behind_proxy
    log_path = tmp_path / "delivery.log"
    env = {
        "HV_DELIVERY_DATABASE_URL": url,
        "HV_DELIVERY_API_BASE_URL": "https://x.example/api",
        "HV_SECRETS_KEYS": new_key_entry(),
    }
    proc = _spawn([sys.executable, "-m", "alerts.delivery"], env, log_path)
    try:
        _waits_then_runs(proc, log_path, proxy, "delivery worker")
        wait_until(lambda: "delivery worker started" in log_path.read_text(), 30, "the worker")
        assert proc.poll() is None, log_path.read_text()
    finally:
        _stop(proc)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_api_waits_for_the_database_before_it_serves(
    db_behind_proxy: tuple[str, FaultProxy], tmp_path: Path
) -> None:
    url, proxy = db_behind_proxy
    port = free_port()
    log_path = tmp_path / "api.log"
    env = {"HV_API_DB_URL": url, "HV_API_SIGNING_KEY": secrets.token_urlsafe(32)}
    argv = [sys.executable, "-m", "homevitals", "api", "run", "--port", str(port)]
    proc = _spawn(argv, env, log_path)
    try:
        wait_until(lambda: "waiting for the record store" in log_path.read_text(), 30, "a wait")
        assert not _listening(port), "the API serves before its record store answers"
        _waits_then_runs(proc, log_path, proxy, "api")
        wait_until(lambda: _listening(port), 30, "the API to listen")
        answer = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["resourceType"] == "CapabilityStatement"
        assert proc.poll() is None, log_path.read_text()
    finally:
        _stop(proc)


def test_a_refused_password_is_not_waited_for(postgres: PostgresServer, tmp_path: Path) -> None:
    # Strong enough for the settings' secret policy: the database is what refuses it.
    url = f"postgresql+psycopg://nobody:wrong-Pw-0123456789@127.0.0.1:{postgres.port}/postgres"
    log_path = tmp_path / "ingest.log"
    proc = _spawn([sys.executable, "-m", "ingest", "run"], {"HV_INGEST_DB_URL": url}, log_path)
    try:
        assert proc.wait(30) == 1
        text = log_path.read_text()
        assert "refused" in text and "wrong-Pw" not in text
    finally:
        _stop(proc)
