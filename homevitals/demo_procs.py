"""Local processes for the demo: a Mosquitto broker with a generated config, and the
deployables (ingest, the alerts engine, the delivery worker, the webhook receiver) as
subprocesses, each with its log file in the demo directory.

Every child runs in its own session, so a Ctrl-C in the terminal reaches only the demo, which
then stops the children in order (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from homevitals.demo_errors import DemoError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
LineHandler = Callable[[str], None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, service: Service, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`.

    Raises:
        DemoError: the service exited first, or nothing listened within `timeout_s`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if service.exited:
            raise DemoError(f"{service.name} exited before listening; see {service.log_path}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise DemoError(f"{service.name}: nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child: ours without any HV_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HV_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def python_argv(*args: str) -> list[str]:
    """Run a module of this project with the interpreter that runs the demo."""
    return [sys.executable, *args]


@dataclass
class Service:
    """One child process: started with its output in `log_path`, or (with `on_line`) its
    stdout handed line by line to `on_line` and its stderr in the log."""

    name: str
    argv: Sequence[str]
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    on_line: LineHandler | None = None
    proc: asyncio.subprocess.Process | None = field(default=None, init=False)
    _reader: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        """Where the child's output goes."""
        return self.workdir / f"{self.name}.log"

    @property
    def exited(self) -> bool:
        """True once the child has ended."""
        return self.proc is not None and self.proc.returncode is not None

    async def start(self) -> None:
        """Start the child.

        Raises:
            DemoError: the program cannot be started.
        """
        with self.log_path.open("ab") as log_file:
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE if self.on_line else log_file,
                    stderr=log_file,
                    cwd=self.workdir,
                    env=dict(self.env),
                    start_new_session=True,
                )
            except OSError as exc:
                raise DemoError(f"cannot start {self.name}: {exc}") from exc
        if self.on_line is not None:
            self._reader = asyncio.create_task(self._read_lines(self.on_line))

    async def _read_lines(self, on_line: LineHandler) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            on_line(line.decode(errors="replace").rstrip("\n"))

    async def stop(self) -> int | None:
        """SIGTERM the child's process group, SIGKILL it after a grace period; its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("%s: did not stop within %ss, killing it", self.name, STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2.0)
        return proc.returncode


def find_mosquitto() -> str:
    """The Mosquitto binary.

    Raises:
        DemoError: Mosquitto is not installed.
    """
    for path in (shutil.which("mosquitto"), shutil.which("mosquitto", path="/usr/sbin:/sbin")):
        if path:
            return path
    raise DemoError("mosquitto is not installed (Debian: apt-get install mosquitto)")


def broker_settings(data: Path) -> list[str]:
    """The demo brokers' general settings: persistence under `data`, logging to stderr, and
    queue limits."""
    return [
        "persistence true",
        f"persistence_location {data}/",
        "autosave_interval 1800",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        # mosquitto.conf(5): the stock limit of 1000 dropped QoS 1 messages to a slow subscriber.
        "max_queued_messages 100000",
    ]


def mosquitto_service(workdir: Path, port: int) -> Service:
    """A Mosquitto 2 broker on 127.0.0.1:`port` with a generated config: persistence on (data
    under `workdir`), explicit queue limits, hub accounts in `workdir/passwd-gateways` (written
    by enrolment; a client giving a user name must match it), and anonymous access for the
    demo's services on loopback only.

    Raises:
        DemoError: Mosquitto is not installed.
    """
    binary = find_mosquitto()
    data = workdir / "mosquitto-data"
    data.mkdir(parents=True, exist_ok=True)
    passwd = workdir / "passwd-gateways"
    passwd.touch(mode=0o600)
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"password_file {passwd}",
        *broker_settings(data),
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # keep the data directory ours; loopback-only demo broker
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return Service("mosquitto", [binary, "-c", str(conf)], workdir, env=child_env({}))
