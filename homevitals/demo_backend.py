"""The demo's server side, each part a subprocess started as it is deployed: the broker,
the hub enrolment endpoint (`homevitals enrolment serve`, which writes an enrolled hub's
account into the broker's password file), ingest (`python -m ingest run`, its time-series
mirror to a local line-protocol file), the webhook delivery worker (`python -m alerts.delivery`,
signing secrets sealed with a key made for the run), the care team's verifying receiver
(`homevitals webhook receive`), the care-team API and dashboard (`homevitals api run`, in
development mode with a sign-in code made for this run), and the rules engine: on the story's
accelerated clock while it plays (`python -m homevitals.demo_engine`), then
`homevitals alerts run --deliver` on the wall clock.

Secrets reach the children through their environment, never their command line (`ps` shows
command lines to every user).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from careteam.secrets import new_key_entry
from homevitals.demo_broker import INGEST_USER, Broker, secured_broker
from homevitals.demo_clock import DemoClock
from homevitals.demo_procs import LineHandler, Service, child_env, free_port, python_argv
from homevitals.demo_procs import wait_for_port as _wait_for_port

log = logging.getLogger(__name__)

ENGINE_INTERVAL_S = 0.25  # wall seconds between the accelerated engine's steps
TIMESERIES_FILE = "timeseries.lp"


@dataclass
class Backend:
    """The server-side processes of one demo run (see the module docstring)."""

    workdir: Path
    db_url: str
    plan_path: Path
    on_webhook_line: LineHandler
    api_port: int = field(default_factory=free_port)
    receiver_port: int = field(default_factory=free_port)
    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    dashboard_code: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    secrets_keys: str = field(default_factory=new_key_entry)
    enrolment_port: int = field(default_factory=free_port)
    services: list[Service] = field(default_factory=list)
    broker: Broker | None = None
    finite: set[str] = field(default_factory=set)  # services that end by themselves

    @property
    def api_url(self) -> str:
        """The API's base (the dashboard is under /dashboard/, REST under /v1)."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def enrolment_url(self) -> str:
        """Where hubs redeem their enrolment codes."""
        return f"http://127.0.0.1:{self.enrolment_port}"

    @property
    def webhook_url(self) -> str:
        """Where the hospital clinic's receiver listens."""
        return f"http://127.0.0.1:{self.receiver_port}/hooks/homevitals"

    @property
    def timeseries_path(self) -> Path:
        """The time-series mirror's line-protocol file."""
        return self.workdir / TIMESERIES_FILE

    async def _start(self, service: Service, port: int | None = None) -> Service:
        await service.start()
        self.services.append(service)
        if port is not None:
            await _wait_for_port(port, service)
        return service

    async def start_broker(self) -> Broker:
        """Start Mosquitto (hub and service listeners).

        Raises:
            DemoError: it is missing or did not listen.
        """
        broker = secured_broker(self.workdir, free_port(), free_port())
        await self._start(broker.service, broker.gateway_port)
        await _wait_for_port(broker.service_port, broker.service)
        self.broker = broker
        return broker

    async def start_servers(self, webhook_secret: str) -> None:
        """Start the enrolment endpoint, the receiver, ingest, the delivery worker and the API
        (together).

        Raises:
            DemoError: one could not start or did not listen.
        """
        assert self.broker is not None and self.broker.service.proc is not None
        pid_file = self.workdir / "broker" / "mosquitto.pid"
        pid_file.write_text(str(self.broker.service.proc.pid))
        enrolment = Service(
            "enrolment",
            python_argv("-m", "homevitals", "enrolment", "serve", "--port",
                        str(self.enrolment_port)),
            self.workdir,
            env=child_env(
                {
                    "HV_CARETEAM_DB_URL": self.db_url,
                    "HV_CARETEAM_BROKER_PASSWD_FILE": str(self.broker.gateway_passwords),
                    "HV_CARETEAM_BROKER_PID_FILE": str(pid_file),
                }
            ),
        )  # fmt: skip
        receiver = Service(
            "receiver",
            python_argv(
                "-m", "homevitals", "webhook", "receive", "--port", str(self.receiver_port)
            ),
            self.workdir,
            env=child_env({"HV_WEBHOOK_SECRETS": webhook_secret}),
            on_line=self.on_webhook_line,
        )
        ingest = Service(
            "ingest",
            python_argv("-m", "ingest", "run"),
            self.workdir,
            env=child_env(
                {
                    "HV_INGEST_DB_URL": self.db_url,
                    "HV_INGEST_MQTT_HOST": "127.0.0.1",
                    "HV_INGEST_MQTT_PORT": str(self.broker.service_port),
                    "HV_INGEST_MQTT_USERNAME": INGEST_USER,
                    "HV_INGEST_MQTT_PASSWORD": self.broker.ingest_password,
                    "HV_INGEST_CLIENT_ID": INGEST_USER,  # the broker uses the user name anyway
                    "HV_INGEST_BATCH_MAX_WAIT_MS": "5",
                    "HV_INGEST_TSDB_URL": self.timeseries_path.as_uri(),
                }
            ),
        )
        delivery = Service(
            "delivery",
            python_argv("-m", "alerts.delivery"),
            self.workdir,
            env=child_env(
                {
                    "HV_DELIVERY_DATABASE_URL": self.db_url,
                    "HV_DELIVERY_API_BASE_URL": f"{self.api_url}/v1",
                    # Development only: the receiver is on loopback (docs/threat-model.md, SSRF).
                    "HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS": "true",
                    "HV_DELIVERY_POLL_INTERVAL_S": "0.2",
                    "HV_SECRETS_KEYS": self.secrets_keys,
                }
            ),
        )
        api = Service(
            "api",
            python_argv("-m", "homevitals", "api", "run", "--port", str(self.api_port)),
            self.workdir,
            env=child_env(
                {
                    "HV_API_DB_URL": self.db_url,
                    "HV_API_SIGNING_KEY": self.signing_key,
                    "HV_API_ENVIRONMENT": "development",
                    "HV_API_DASHBOARD_DEV_CODE": self.dashboard_code,
                }
            ),
        )
        await asyncio.gather(
            self._start(enrolment, self.enrolment_port),
            self._start(receiver, self.receiver_port),
            self._start(ingest),
            self._start(delivery),
            self._start(api, self.api_port),
        )

    async def start_engine(self, clock: DemoClock) -> None:
        """Start the rules engine on the story's clock (it ends when the story has caught up
        with the wall clock; then call `start_live_engine`)."""
        assert clock.started_at is not None
        follow = Service(
            "alerts-story",
            python_argv(
                "-m", "homevitals.demo_engine",
                "--care-plan", str(self.plan_path),
                "--sim-start", clock.sim_start.isoformat(),
                "--started-at", clock.started_at.isoformat(),
                "--speed", repr(clock.speed),
                "--interval-s", str(ENGINE_INTERVAL_S),
            ),
            self.workdir,
            env=child_env({"HV_ALERTS_DB_URL": self.db_url}),
        )  # fmt: skip
        self.finite.add(follow.name)
        await self._start(follow)

    def engine_done(self) -> int | None:
        """The accelerated engine's exit status once it ended (None while it runs)."""
        for service in self.services:
            if service.name == "alerts-story" and service.proc is not None:
                return service.proc.returncode
        return None

    async def start_live_engine(self) -> None:
        """`homevitals alerts run --deliver` on the wall clock, from the engine's cursor."""
        argv = python_argv(
            "-m", "homevitals", "alerts", "run", "--interval-s", "0.5", "--deliver",
            "--care-plan", str(self.plan_path),
        )  # fmt: skip
        await self._start(
            Service("alerts", argv, self.workdir, env=child_env({"HV_ALERTS_DB_URL": self.db_url}))
        )

    def stopped_unexpectedly(self) -> Service | None:
        """A long-running part that has exited, if any."""
        for service in self.services:
            if service.exited and service.name not in self.finite:
                return service
        return None

    async def stop(self) -> None:
        """Stop every child, the last started first."""
        while self.services:
            service = self.services.pop()
            code = await service.stop()
            log.info("%s stopped (exit %s)", service.name, code)
