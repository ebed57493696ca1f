"""Real servers for the test suite: Mosquitto, PostgreSQL and VictoriaMetrics.

Each server runs from its Debian binary on a free loopback port, with its data in a temporary
directory, and can be stopped, killed with SIGKILL and restarted on the same port and data (the
fault-injection tests need that). Nothing here uses the system services the Debian packages
install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

READY_TIMEOUT_S = 30.0


class ServerUnavailableError(RuntimeError):
    """A server binary is not installed."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {READY_TIMEOUT_S}s")


def which(*names: str) -> str:
    """Find the first of several binaries on PATH or in the usual Debian places."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
        if found:
            return found
        for candidate in sorted(glob.glob(name), reverse=True):
            if os.access(candidate, os.X_OK):
                return candidate
    raise ServerUnavailableError(f"none of {names} is installed (run `make test` to install)")


@dataclass
class ManagedProcess:
    """A server process we own: start, stop, SIGKILL, restart on the same port and data."""

    name: str
    argv: Sequence[str]
    port: int
    workdir: Path
    run_as: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        argv = list(self.argv)
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
        )
        log.close()
        wait_for_port(self.port, self.proc, self.log_path)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


# ---------------------------------------------------------------------------------------------
# Mosquitto


@dataclass
class MosquittoServer:
    """Mosquitto 2 with a generated config: MQTT 5 capable, persistence on."""

    workdir: Path
    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)
    acl: str | None = None
    extra_config: str = ""
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def write_config(self) -> Path:
        binary = which("mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1800",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            passwd.chmod(0o600)
            tool = which("mosquitto_passwd")
            for user, password in self.users.items():
                subprocess.run(
                    [tool, "-b", str(passwd), user, password], check=True, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl_path = self.workdir / "acl"
            acl_path.write_text(self.acl)
            acl_path.chmod(0o600)
            lines.append(f"acl_file {acl_path}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n" + self.extra_config)
        self.process = ManagedProcess(
            "mosquitto", [binary, "-c", str(conf)], self.port, self.workdir
        )
        return conf

    def start(self) -> None:
        if self.process is None:
            self.write_config()
        assert self.process is not None
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


def mosquitto_version() -> str:
    out = subprocess.run([which("mosquitto"), "-h"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PostgresServer:
    """PostgreSQL from Debian: initdb into a temporary directory, started with pg_ctl."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def run_as(self) -> str | None:
        # PostgreSQL refuses to run as root: use the account the Debian package creates.
        return "postgres" if os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        return which(name, f"/usr/lib/postgresql/*/bin/{name}")

    def start(self) -> None:
        data = self.workdir / "pgdata"
        sock = self.workdir / "sock"
        if self.process is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            sock.mkdir(exist_ok=True)
            if self.run_as:
                entry = pwd.getpwnam(self.run_as)
                for path in (self.workdir, sock):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            cmd = [
                self._bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ]
            if self.run_as:
                cmd = ["runuser", "-u", self.run_as, "--", *cmd]
            subprocess.run(cmd, check=True, capture_output=True, cwd=self.workdir)
            argv = [
                self._bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={sock}",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                "shared_buffers=256MB",
            ]
            self.process = ManagedProcess("postgres", argv, self.port, self.workdir, self.run_as)
        self.process.start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            done = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not become ready")

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


def postgres_version() -> str:
    out = subprocess.run(
        [which("postgres", "/usr/lib/postgresql/*/bin/postgres"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


# ---------------------------------------------------------------------------------------------
# VictoriaMetrics


# The mirror may write a batch twice (a crash between the server's 2xx and the cursor's commit);
# with one sample kept per series and millisecond, the second write changes nothing. The same
# flag is in the shipped docker-compose.yml (a test compares them).
VICTORIA_METRICS_DEDUP: Final = ("-dedup.minScrapeInterval=1ms",)


@dataclass
class VictoriaMetricsServer:
    """VictoriaMetrics single-node from Debian; accepts InfluxDB's /api/v2/write."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.process is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            argv = [
                which("victoria-metrics"),
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.workdir / 'data'}",
                "-retentionPeriod=100y",  # readings carry historic times; the default is 1 month
                "-search.latencyOffset=0s",
                *VICTORIA_METRICS_DEDUP,
                "-loggerLevel=ERROR",
            ]
            self.process = ManagedProcess("victoria-metrics", argv, self.port, self.workdir)
        self.process.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("victoria-metrics did not become healthy")

    def force_flush(self) -> None:
        """Make recently written points searchable now (VM buffers them for about a second)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


def victoria_metrics_version() -> str:
    out = subprocess.run(
        [which("victoria-metrics"), "-version"], capture_output=True, text=True, check=False
    )
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0] if lines else "victoria-metrics (version not reported)"
