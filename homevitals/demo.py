"""`homevitals demo`: the whole system on one machine, with simulated devices, finite and
self-explaining (the composition root of the demo).

What runs, and how it runs in production:
- Mosquitto (a subprocess, generated config on a free loopback port).
- The record store: a SQLite file in the demo directory (WAL, synchronous=FULL, as ingest makes
  every connection), or any SQLAlchemy URL (`--db`, e.g. PostgreSQL).
- ingest (`python -m ingest run`), the rules engine (`homevitals alerts run --deliver`), the
  webhook delivery worker (`python -m alerts.delivery`) and the care team's verifying receiver
  (`homevitals webhook receive`): each a subprocess, as deployed.
- The scenario's simulated meters and cuffs on the in-process virtual air, and the gateway on
  the virtual BLE backend in this same process (the air is in-process): it scans, pairs each
  device (with the passkey where the device shows one), back-fills its memory and publishes.

The demo narrates what happens, prints a summary, and succeeds when every alert the scenario
expects reached the care team's receiver as a verified `alert.opened` webhook.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery import tables as delivery_tables
from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.delivery.ssrf import SsrfPolicy
from alerts.engine import tables as engine_tables
from alerts.engine.store import migrate as migrate_engine
from careteam import consent_store, enrolment_store, record, registry
from careteam.audit import Actor
from careteam.consent import GrantRequest
from careteam.errors import NotFoundError
from careteam.kinds import DATA_KINDS
from careteam.secrets import SecretBox, new_key_entry
from firmware_sims.air import VirtualAir
from firmware_sims.scenario_files import load_scenario
from gateway.app import open_hub
from gateway.app import run as run_gateway
from gateway.enrolment import redeem as redeem_code
from gateway.service import PAIRED_OUTCOMES
from gateway.settings import GatewaySettings, load_settings
from homevitals.demo_dashboard import register_other_teams
from homevitals.demo_devices import Home, build_home, gateway_timezone, rebased
from homevitals.demo_errors import DemoError
from homevitals.demo_procs import (
    Service,
    child_env,
    free_port,
    mosquitto_service,
    python_argv,
    wait_for_port,
)
from homevitals.demo_report import DemoReport, Narrator, Say, Webhook, parse_webhook_line
from ingest.store import make_engine
from ingest.store import migrate as migrate_ingest

log = logging.getLogger(__name__)

WEBHOOK_EVENTS = (
    "alert.opened",
    "alert.updated",
    "alert.resolved",
    "alert.escalated",
    "delivery.failing",
)
POLL_S = 0.25
SETTLE_S = 1.5
STALL_S = 5.0  # readings stopped arriving (a faulty device kept some back)
GATEWAY_STOP_S = 10.0  # one cancel stops the gateway; this only bounds the wait
HomeBuilder = Callable[[VirtualAir], Awaitable[Home]]


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo.

    Attributes:
        scenario: a shipped scenario name or a TOML path (ignored when a home builder is given).
        directory: where configs, logs and databases go (default: a new temp directory).
        db_url: the record store (default: SQLite in `directory`).
        timeout_s: give up waiting for the expected webhooks after this long.
        extra_webhook_urls: more (loopback) endpoints to register for the same care team, e.g.
            a test's own receiver; their ids are in `DemoReport.extra_endpoints`.
        pairing_page: serve the gateway's pairing page (on a free loopback port).
        secrets_keys: the ``HV_SECRETS_KEYS`` that seal webhook secrets (default: a new key
            for this run; a test that reads a secret back from the record passes its own).
    """

    scenario: str = "home-demo"
    directory: Path | None = None
    db_url: str | None = None
    timeout_s: float = 120.0
    extra_webhook_urls: tuple[str, ...] = ()
    pairing_page: bool = True
    secrets_keys: str = field(default_factory=new_key_entry)


# ------------------------------------------------------------------------------------ setup


def prepare_store(db_url: str) -> None:
    """Create every table (ingest, rules engine, delivery and care teams).

    Raises:
        StoreError, AlertsError: the database cannot be reached or migrated.
    """
    migrate_ingest(db_url)
    migrate_engine(db_url)
    migrate_delivery(db_url)


@dataclass(frozen=True)
class CareTeam:
    """The demo's care team and its registered endpoints."""

    team_id: str
    endpoint_id: str
    secret: str
    url: str
    extra_endpoints: dict[str, str]


DEMO_ACTOR = Actor("operator", "demo", source="cli")


def follow_with_consent(conn: sa.Connection, team_id: str, patient_id: str, at: datetime) -> None:
    """Register `patient_id` (if new) in the record, make `team_id` follow them, and record the
    patient's consent (given in person) for the team to see every kind of their data."""
    register_patient(conn, patient_id, at)
    registry.assign_patient(conn, team_id, patient_id, at)
    request = GrantRequest(patient_id, "team", team_id, tuple(DATA_KINDS), at, None, "in_person")
    consent_store.grant(conn, request, actor=DEMO_ACTOR, at=at)


def register_patient(conn: sa.Connection, patient_id: str, at: datetime) -> None:
    """Register a demo patient in the record unless registered already."""
    try:
        record.get_patient(conn, patient_id)
    except NotFoundError:
        record.add_patient(
            conn,
            patient_id=patient_id,
            display_name=f"Demo patient {patient_id}",
            timezone="UTC",
            actor=DEMO_ACTOR,
            at=at,
        )


def enrol_hub(db_url: str, gateway_id: str, patient_ids: Sequence[str]) -> None:
    """Register the patients and enrol a hub for them, as an operator enrols a certificate
    hub (ingest quarantines readings from hubs that are not enrolled for the patient)."""
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            for patient_id in patient_ids:
                register_patient(conn, patient_id, now)
            enrolment_store.enrol_gateway(conn, gateway_id, patient_ids, actor=DEMO_ACTOR, at=now)
    finally:
        engine.dispose()


def make_enrolment_code(db_url: str, patient_id: str) -> str:
    """A single-use hub enrolment code for `patient_id`, as the care team makes one."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            issued = enrolment_store.create_code(
                conn, [patient_id], actor=DEMO_ACTOR, at=datetime.now(UTC)
            )
    finally:
        engine.dispose()
    return issued.code


def register_care_team(
    db_url: str, patient_id: str, url: str, extra_urls: tuple[str, ...] = (), *, box: SecretBox
) -> CareTeam:
    """An institution, a team following `patient_id`, a nurse, and webhook endpoints at
    `url` and `extra_urls` (loopback receivers: registered under the development-only
    loopback policy).

    Raises:
        AlertsError, CareteamError: a record write was refused (the field is named).
    """
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            institution = registry.add_institution(
                conn, "Riverside Hospital", "hospital_clinic", now
            )
            team = registry.add_team(conn, institution, "Diabetes and hypertension clinic", now)
            registry.add_member(conn, team, "Nurse on call", role="nurse", tier=0, at=now)
            follow_with_consent(conn, team, patient_id, now)
            policy = SsrfPolicy(allow_loopback=True)
            endpoint = endpoints.register_endpoint(
                conn, team, url, WEBHOOK_EVENTS, at=now, policy=policy, box=box
            )
            extra = {
                u: endpoints.register_endpoint(
                    conn, team, u, WEBHOOK_EVENTS, at=now, policy=policy, box=box
                ).endpoint_id
                for u in extra_urls
            }
    finally:
        engine.dispose()
    return CareTeam(team, endpoint.endpoint_id, endpoint.secret, url, extra)


# ------------------------------------------------------------------------------------ the run


class Demo:
    """One run of the whole system (see the module docstring)."""

    def __init__(self, options: DemoOptions, say: Say, home_builder: HomeBuilder | None) -> None:
        self.options = options
        self.say = Narrator(say)
        self.home_builder = home_builder
        self.workdir = options.directory or Path(tempfile.mkdtemp(prefix="homevitals-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = options.db_url or f"sqlite:///{self.workdir / 'homevitals.db'}"
        self._store_ready = False
        self.gateway_id = ""
        self.plan_path = self.workdir / "care-plan.json"
        self._log_handler = _log_to(self.workdir / "demo.log")
        self.report = DemoReport(self.workdir)
        self.services: list[Service] = []
        self._webhooks: asyncio.Queue[Webhook] = asyncio.Queue()

    async def _start(self, service: Service, port: int | None = None) -> Service:
        await service.start()
        self.services.append(service)
        if port is not None:
            await wait_for_port(port, service)
        return service

    def _on_receiver_line(self, line: str) -> None:
        hook = parse_webhook_line(line)
        if hook is not None:
            self._webhooks.put_nowait(hook)

    async def run(self) -> DemoReport:
        """Run the demo to its end; the report says whether it passed.

        Raises:
            DemoError: a part could not be started or stopped unexpectedly.
            ScenarioError: the scenario cannot be loaded.
        """
        try:
            await self._run()
        finally:
            await self.stop()
            await self._verify_audit_trail()
            self.report.elapsed_s = self.say.elapsed_s
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
        return self.report

    async def _verify_audit_trail(self) -> None:
        """The self-check's last step: `homevitals audit verify` on the record store."""
        if not self._store_ready:
            return
        proc = await asyncio.create_subprocess_exec(
            *python_argv("-m", "homevitals", "audit", "verify", "--db", self.db_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env({}),
        )
        out, err = await proc.communicate()
        self.report.audit_ok = proc.returncode == 0
        self.report.audit_line = (out or err).decode(errors="replace").strip()
        self.say(f"audit trail: {self.report.audit_line}")

    async def stop(self) -> None:
        """Stop every child, the last started first."""
        while self.services:
            service = self.services.pop()
            code = await service.stop()
            log.info("%s stopped (exit %s)", service.name, code)

    async def _run(self) -> None:
        say = self.say
        say(f"demo directory {self.workdir} (configs, logs, databases)")
        scenario = None
        if self.home_builder is None:
            scenario = rebased(load_scenario(self.options.scenario), datetime.now(UTC))
            end = scenario.start_utc + timedelta(days=scenario.days - 1)
            say(f"scenario {scenario.name}: {' '.join(scenario.description.split())}")
            say(
                f"  {scenario.days} days of readings for patient {scenario.patient_id}, dated "
                f"{scenario.start_utc:%Y-%m-%d} to {end:%Y-%m-%d} (generated history, moved to "
                "end before now so that the engine, which runs on the wall clock, sees it fresh)"
            )

        mqtt_port = free_port()
        await self._start(mosquitto_service(self.workdir, mqtt_port), mqtt_port)
        say(f"broker: Mosquitto on 127.0.0.1:{mqtt_port} ({self.workdir / 'mosquitto.conf'})")

        await asyncio.to_thread(prepare_store, self.db_url)
        self._store_ready = True
        say(f"record store: {_safe_url(self.db_url)} (ingest, alerts, delivery tables migrated)")

        async with VirtualAir() as air:
            if self.home_builder is not None:
                home = await self.home_builder(air)
            else:
                assert scenario is not None
                home = await build_home(scenario, air)
            self.report.readings_held = home.readings_held
            self.report.expected = dict(home.expected)
            await self._start_backend(home, mqtt_port)
            settings = self._gateway_settings(home, mqtt_port)
            for device in home.devices:
                say(
                    f"device on the air: {device.local_name} {device.address} "
                    f"({device.model.key}), {home.held_by(device)} readings in memory"
                )
            await self._pair(home, settings, air)
            gateway = asyncio.create_task(run_gateway(settings, air=air), name="gateway")
            page = f"http://{settings.page_host}:{settings.page_port}/"
            say(
                f"gateway {self.gateway_id}: running (publishing to MQTT, syncing paired devices; "
                f"pairing page {page if settings.page_enabled else 'off'})"
            )
            try:
                await self._watch(gateway)
            finally:
                await _stop_gateway(gateway)

    async def _start_backend(self, home: Home, mqtt_port: int) -> None:
        say = self.say
        receiver_port = free_port()
        url = f"http://127.0.0.1:{receiver_port}/hooks/homevitals"
        team = await asyncio.to_thread(
            register_care_team,
            self.db_url,
            home.patient_id,
            url,
            self.options.extra_webhook_urls,
            box=SecretBox.from_setting(self.options.secrets_keys),
        )
        self.report.extra_endpoints = dict(team.extra_endpoints)
        await asyncio.to_thread(register_other_teams, self.db_url, home.patient_id)
        self.report.patient_id = home.patient_id
        self.report.db_url = self.db_url
        await self._enrol_hub(home.patient_id)
        say(
            f"care team: Riverside Hospital, diabetes and hypertension clinic follows "
            f"{home.patient_id}; webhook endpoint {url} ({', '.join(WEBHOOK_EVENTS)})"
        )
        say(
            "care teams: Riverside Community Health Centre (every kind) and Dr Zhou's family "
            "practice (no blood pressure: the patient did not grant it) follow them too"
        )
        receiver = Service(
            "receiver",
            python_argv(
                "-m",
                "homevitals",
                "webhook",
                "receive",
                "--port",
                str(receiver_port),
            ),
            self.workdir,
            env=child_env({"HV_WEBHOOK_SECRETS": team.secret}),  # not argv: `ps` shows argv
            on_line=self._on_receiver_line,
        )
        await self._start(receiver, receiver_port)
        say(
            f"receiver: `homevitals webhook receive` on :{receiver_port} verifies every "
            "signature (Standard Webhooks, HMAC-SHA256)"
        )
        ingest_env = {
            "HV_INGEST_DB_URL": self.db_url,
            "HV_INGEST_MQTT_HOST": "127.0.0.1",
            "HV_INGEST_MQTT_PORT": str(mqtt_port),
            "HV_INGEST_CLIENT_ID": "ingest-demo",
            "HV_INGEST_BATCH_MAX_WAIT_MS": "5",
        }
        await self._start(
            Service(
                "ingest",
                python_argv("-m", "ingest", "run"),
                self.workdir,
                env=child_env(ingest_env),
            )
        )
        say("ingest: `python -m ingest run` (persistent MQTT 5 session, ack after commit)")
        self.plan_path.write_text(json.dumps(home.care_plan, indent=2))
        delivery_env = {
            "HV_DELIVERY_DATABASE_URL": self.db_url,
            "HV_DELIVERY_API_BASE_URL": "http://127.0.0.1:8000/v1",
            "HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS": "true",  # development only (SEC-SSRF-08)
            "HV_DELIVERY_POLL_INTERVAL_S": "0.2",
            "HV_SECRETS_KEYS": self.options.secrets_keys,
        }
        await self._start(
            Service(
                "delivery",
                python_argv("-m", "alerts.delivery"),
                self.workdir,
                env=child_env(delivery_env),
            )
        )
        say("delivery worker: `python -m alerts.delivery` (signed POSTs, retries)")

    async def _enrol_hub(self, patient_id: str) -> None:
        """The care team makes an enrolment code; the hub redeems it at the enrolment endpoint
        (`homevitals enrolment serve`), which installs the hub's broker account."""
        say = self.say
        code = await asyncio.to_thread(make_enrolment_code, self.db_url, patient_id)
        say(f"care team: enrolment code {code} for {patient_id}'s hub (single use, 24 h)")
        broker = next(s for s in self.services if s.name == "mosquitto")
        assert broker.proc is not None
        pid_file = self.workdir / "mosquitto.pid"
        pid_file.write_text(str(broker.proc.pid))
        port = free_port()
        await self._start(
            Service(
                "enrolment",
                python_argv(
                    "-m", "homevitals", "enrolment", "serve", "--db", self.db_url,
                    "--passwd-file", str(self.workdir / "passwd-gateways"),
                    "--broker-pid-file", str(pid_file), "--port", str(port),
                ),
                self.workdir,
                env=child_env({}),
            ),
            port,
        )  # fmt: skip
        identity = await asyncio.to_thread(
            redeem_code, f"http://127.0.0.1:{port}", code, self.workdir / "gateway"
        )
        self.gateway_id = identity.gateway_id
        say(
            f"gateway: enrolled as {identity.gateway_id} with the code (`homevitals gateway "
            f"enrol`), serving {', '.join(p.short_name for p in identity.patients)}; its broker "
            "password is in the broker's password file"
        )

    def _gateway_settings(self, home: Home, mqtt_port: int) -> GatewaySettings:
        # No gateway id or broker credentials here: they come from the enrolment.
        return load_settings(
            None,
            data_dir=self.workdir / "gateway",
            enrolment_url=None,
            timezone=gateway_timezone(home.utc_offset_min),
            mqtt_host="127.0.0.1",
            mqtt_port=mqtt_port,
            ble_transport="virtual",
            scan_s=1.0,
            scan_idle_s=1.0,
            pace_s=0.0,
            silence_timeout_s=1.5,
            resend_first_s=5.0,
            resend_max_s=30.0,
            page_enabled=self.options.pairing_page,
            page_port=free_port(),
        )

    async def _pair(self, home: Home, settings: GatewaySettings, air: VirtualAir) -> None:
        say = self.say
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_hub(settings, air=air) as hub:
            seen = await hub.gateway.discover(2.0)
            for s in seen:
                say(f"gateway: found {s.name or '-'} at {s.address} ({s.kind}, rssi {s.rssi})")
            for device in home.devices:
                passkey = home.passkeys.get(device.address.upper())
                how = (
                    f"passkey {passkey:06d} shown on the device"
                    if passkey is not None
                    else ("just works")
                )
                result = await hub.gateway.pair(device.address, home.patient_id, passkey=passkey)
                name = f"{device.local_name} ({device.model.key})"
                say(
                    f"gateway: paired {name} to {home.patient_id} [{how}]: {result.outcome}, "
                    f"{result.stored} readings back-filled into the outbox"
                )
                if not (result.identified and result.outcome in PAIRED_OUTCOMES):
                    raise DemoError(f"pairing {name} ended {result.outcome}: {result.detail}")
                if result.outcome not in ("complete", "nothing_new"):
                    say(
                        f"gateway: {name} is paired; the transfer ended {result.outcome} "
                        f"({result.detail or '-'}), the next sync resumes after the cursor"
                    )
                self.report.paired.append(device.local_name)

    async def _start_engine(self) -> None:
        """Review the back-filled history (a finite subprocess), then evaluate live."""
        say = self.say
        review = Service(
            "alerts-history",
            python_argv(
                "-m",
                "homevitals.demo_engine",
                "--db",
                self.db_url,
                "--care-plan",
                str(self.plan_path),
            ),
            self.workdir,
            env=child_env({}),
        )
        say(
            "rules engine: reviewing the back-filled history in time order, one step per "
            "reading and per hour, as if the hub had been there all along "
            "(`python -m homevitals.demo_engine`)"
        )
        await review.start()
        code = await review.proc.wait() if review.proc else None
        if code != 0:
            raise DemoError(f"the history review failed (exit {code}); see {review.log_path}")
        live = python_argv(
            "-m",
            "homevitals",
            "alerts",
            "run",
            "--db",
            self.db_url,
            "--interval-s",
            "0.5",
            "--deliver",
            "--care-plan",
            str(self.plan_path),
        )
        await self._start(Service("alerts", live, self.workdir, env=child_env({})))
        say(
            "rules engine: live, `homevitals alerts run --deliver` (events to the webhook "
            "outbox in the engine's transaction)"
        )

    async def _watch(self, gateway: asyncio.Task[None]) -> None:
        say = self.say
        engine = make_engine(self.db_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.timeout_s
        settled_at: float | None = None
        shown_stored = -1
        stable_since = loop.time()
        seen_events: set[str] = set()
        engine_started = False
        try:
            while loop.time() < deadline:
                for service in self.services:
                    if service.exited:
                        raise DemoError(
                            f"{service.name} stopped unexpectedly; see {service.log_path}"
                        )
                if gateway.done():
                    exc = gateway.exception() if not gateway.cancelled() else None
                    raise DemoError(f"the gateway stopped: {exc!r}")
                stored, events, pending = await asyncio.to_thread(_poll_store, engine)
                self.report.pending_deliveries = pending
                if stored != shown_stored:
                    say(
                        f"ingest: {stored} of {self.report.readings_held} readings in the "
                        "record store"
                    )
                    shown_stored = stored
                    stable_since = loop.time()
                self.report.readings_stored = stored
                held = self.report.readings_held
                if not engine_started and (
                    stored >= held or (stored and loop.time() - stable_since > STALL_S)
                ):
                    engine_started = True
                    await self._start_engine()
                    continue  # poll again: the review committed events meanwhile
                for event in events:
                    if event.event_id in seen_events:
                        continue
                    seen_events.add(event.event_id)
                    if event.type == "alert.opened" and event.alert_id:
                        self.report.alerts[event.alert_id] = (event.rule_id, event.priority)
                    say(
                        f"rules engine: {event.type} {event.rule_id} (priority "
                        f"{event.priority}) at {event.occurred_at:%Y-%m-%d %H:%M} UTC"
                    )
                while not self._webhooks.empty():
                    hook = self._webhooks.get_nowait()
                    self.report.webhooks.append(hook)
                    say(
                        f"care team received {hook.type} {hook.rule_id or ''} "
                        f"(priority {hook.priority or '-'}), webhook-id {hook.webhook_id[:13]}: "
                        "signature verified"
                    )
                if self.report.ok and engine_started and not pending:
                    settled_at = settled_at or loop.time()
                    if loop.time() - settled_at >= SETTLE_S:
                        return
                await asyncio.sleep(POLL_S)
            say(f"gave up after {self.options.timeout_s:.0f} s")
        finally:
            engine.dispose()


@dataclass(frozen=True)
class EngineEvent:
    """An alert event the engine committed (`alert_events`)."""

    event_id: str
    type: str
    rule_id: str
    priority: str
    alert_id: str | None
    occurred_at: datetime


def _poll_store(engine: sa.Engine) -> tuple[int, list[EngineEvent], int]:
    with engine.connect() as conn:
        stored = int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one())
        e = engine_tables.alert_events.c
        rows = conn.execute(
            sa.select(
                e.event_id, e.type, e.rule_id, e.priority, e.alert_id, e.occurred_at
            ).order_by(e.occurred_at, e.event_id)
        ).all()
        d = delivery_tables.webhook_deliveries.c
        pending = conn.execute(
            sa.select(sa.func.count()).where(d.status == delivery_tables.PENDING)
        ).scalar_one()
    events = [EngineEvent(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5]) for r in rows]
    return stored, events, int(pending)


async def _stop_gateway(gateway: asyncio.Task[None]) -> None:
    """Cancel the gateway once and wait for it, at most `GATEWAY_STOP_S`."""
    gateway.cancel()
    done, _ = await asyncio.wait({gateway}, timeout=GATEWAY_STOP_S)
    if not done:
        log.warning("the gateway did not stop within %s s", GATEWAY_STOP_S)
        return
    if not gateway.cancelled() and gateway.exception() is not None:
        log.warning("the gateway ended with %r", gateway.exception())


def _log_to(path: Path) -> logging.Handler:
    """Send this process's logs (gateway, devices) to `path`: the terminal tells the story."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


async def run_demo(
    options: DemoOptions, say: Say = print, home_builder: HomeBuilder | None = None
) -> DemoReport:
    """Run the demo (see the module docstring) and return its report.

    `home_builder` replaces the scenario with devices the caller builds on the air (tests).

    Raises:
        DemoError: a part could not be started, or stopped while the demo ran.
        ScenarioError: the scenario cannot be loaded.
    """
    return await Demo(options, say, home_builder).run()
