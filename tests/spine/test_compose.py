"""docker-compose.yml is valid for users (checked with Debian's docker-compose, no engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.broker_config import ACL_FILES, MOUNTS
from tests.support.servers import VICTORIA_METRICS_DEDUP

ROOT = Path(__file__).parents[2]
ENV = {
    "HV_POSTGRES_PASSWORD": "pg-secret",
    "HV_INFLUX_TOKEN": "influx-token",
    "HV_INGEST_MQTT_PASSWORD": "mqtt-secret",
    "HV_ACK_KEY": "ack-key",
}


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI=true (scripts/install-system-deps.sh)")
        pytest.skip("docker-compose not installed")
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        check=False,
        cwd=ROOT,
    )


def test_compose_config_is_valid() -> None:
    done = _compose("config", env=ENV)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert {"mosquitto", "postgres", "influxdb", "ingest", "alerts", "delivery"} <= set(
        config["services"]
    )
    # Secrets are interpolated from the environment, never written in the file.
    assert "pg-secret" not in (ROOT / "docker-compose.yml").read_text()


def test_compose_refuses_to_start_without_secrets() -> None:
    done = _compose("config", env={})
    assert done.returncode != 0
    assert "HV_POSTGRES_PASSWORD" in done.stderr


def test_shipped_config_never_allows_loopback_webhooks() -> None:
    # SEC-SSRF-08 / SEC-WH-07: the test-only flag stays off in what we ship.
    text = (ROOT / "docker-compose.yml").read_text()
    assert "ALLOW_LOOPBACK" not in text.upper()
    assert "http://" not in "".join(
        line for line in text.splitlines() if "API_BASE_URL" in line or "ACK_BASE_URL" in line
    )


def test_compose_mounts_the_tested_broker_files() -> None:
    # The broker runs exactly the files tests/spine/test_broker_config.py runs.
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {}
    for volume in config["services"]["mosquitto"]["volumes"]:
        host, container, *mode = volume.split(":")
        if host.startswith("./"):
            assert mode == ["ro"], volume
            mounts[host] = container
    assert mounts == MOUNTS
    for host in MOUNTS:
        name = host.removeprefix("./deploy/mosquitto/")
        if name in ("mosquitto.conf", *ACL_FILES):
            assert (ROOT / host).is_file(), host  # shipped; passwd-* and certs/ from init.sh


def test_shipped_victoria_metrics_deduplicates_like_the_suites_server() -> None:
    # The mirror may write a batch twice (crash between the server's 2xx and the cursor
    # commit): the shipped server must drop the repeat as the tested one does
    # (tests/ingest/test_faults.py, the SIGKILL between mirror write and cursor commit).
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = config["services"]["victoria-metrics"]["command"]
    assert set(VICTORIA_METRICS_DEDUP) <= set(command)
