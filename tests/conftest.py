"""Session-wide real servers, started once on free loopback ports, and what the run used.

A missing server binary fails the run under CI=true; locally the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import settings

from tests.support import servers

# Tests do not assert speed (that is bench/'s job): hypothesis' default 200 ms deadline per
# example failed a codec property on a loaded machine (282 ms), so no deadline here.
settings.register_profile("homevitals", deadline=None)
settings.load_profile("homevitals")

STARTED: dict[str, str] = {}
T = TypeVar("T")


def _start_or_skip(name: str, factory: Callable[[], T], version: Callable[[], str]) -> T:
    try:
        server = factory()
        server.start()  # type: ignore[attr-defined]
    except servers.ServerUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true: {exc}")
        pytest.skip(f"{name} not installed: {exc}")
    STARTED[name] = version()
    return server


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.MosquittoServer]:
    """An anonymous-access Mosquitto 2 broker for tests that do not test security."""
    workdir = tmp_path_factory.mktemp("mosquitto")
    server = _start_or_skip(
        "mosquitto", lambda: servers.MosquittoServer(workdir), servers.mosquitto_version
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.PostgresServer]:
    # Not under pytest's tmp dir: that is private to root, and postgres runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="hv-postgres-"))
    server = _start_or_skip(
        "postgresql", lambda: servers.PostgresServer(workdir), servers.postgres_version
    )
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: servers.PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:16]}")


@pytest.fixture(scope="session")
def victoria_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[servers.VictoriaMetricsServer]:
    workdir = tmp_path_factory.mktemp("victoria-metrics")
    server = _start_or_skip(
        "victoria-metrics",
        lambda: servers.VictoriaMetricsServer(workdir),
        servers.victoria_metrics_version,
    )
    yield server
    server.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    # CI's log names the slowest tests, as `--durations=25` would: `make test` must stay fast.
    if os.environ.get("CI") == "true" and config.option.durations is None:
        config.option.durations = 25


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("real servers started by this run")
    if not STARTED:
        terminalreporter.write_line("none")
    for name, version in sorted(STARTED.items()):
        terminalreporter.write_line(f"{name}: {version}")
