"""The whole chain as separate processes, with a fault proxy on each link we break.

meter (Bumble, the test's virtual air, HCI/TCP) -> hub (`python -m gateway`, subprocess) ->
[fault proxy] -> Mosquitto (its own, killable) -> ingest (subprocess) -> [fault proxy] ->
PostgreSQL (+ VictoriaMetrics mirror) -> rules engine (`homevitals alerts run`, subprocess) ->
delivery worker (`python -m alerts.delivery`, subprocess) -> a verifying uvicorn receiver.

`Chain.ledger()` gathers every stage for `tests.e2e.ledger`; `Proc` starts, SIGKILLs and
restarts one process. Everything is real: faults are SIGKILLs and the proxies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from careteam.secrets import SecretBox
from devices.reading import Kind, device_id_for, reading_id_for
from firmware_sims.air import VirtualAir
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.hci_bridge import HciEndpoint, open_hci_endpoint
from gateway.outbox import Outbox
from homevitals.demo_record import prepare_store, register_care_team
from tests.e2e.ledger import Content, LedgerReport, check_alerts, check_readings, report
from tests.e2e.receiver import RecordingReceiver
from tests.gateway.sims import make_meter
from tests.ingest.support import ingest_env, vm_samples
from tests.support.fault_proxy import FaultProxy
from tests.support.record import enrol
from tests.support.servers import MosquittoServer, PostgresServer, VictoriaMetricsServer

ROOT = Path(__file__).parents[2]
HOMEVITALS = str(Path(sys.executable).parent / "homevitals")
HYPO_MG_DL = 40.0


class Proc:
    """One long-running process of the chain: start, SIGKILL, restart; log in a file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name, self.argv, self.log_path = name, argv, log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
        self.env.update(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, **extra_env: str) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"=== start ({self.kills} kills so far)\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**self.env, **extra_env},
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until true; return how long it took (the suite reports recovery times)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


@dataclass
class Chain:
    """The processes, proxies and devices of one fault-suite run (see the module doc)."""

    workdir: Path
    pg_url: str
    postgres: PostgresServer
    vm: VictoriaMetricsServer
    air: VirtualAir
    receiver: RecordingReceiver
    keepalive_s: int = 4
    # The hub resends what no receipt named after this long (then up to 4 s): short, so
    # the suite recovers fast from what the faults dropped.
    resend_first_s: float = 2.0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return f"pat-{self.tag}"

    @property
    def gateway_id(self) -> str:
        return f"gw-{self.tag}"

    async def start(
        self,
        *,
        records: int,
        ingest_extra: Mapping[str, str] | None = None,
        broker_config: str = "",
        hub_data_dir: Path | None = None,
    ) -> None:
        """Servers, proxies, the server-side processes, the meter holding `records` readings
        (and a level-2 hypo), paired with the hub; the hub is started by `proc("hub")`.
        `broker_config` adds lines to Mosquitto's configuration; `hub_data_dir` puts the hub's
        data elsewhere (a small filesystem of its own)."""
        self.hub_dir = hub_data_dir or self.workdir / "hub"
        self.broker = MosquittoServer(self.workdir / "broker", extra_config=broker_config)
        self.broker.start()
        self.hub_link = FaultProxy(self.broker.port).start()
        self.db_link = FaultProxy(self.postgres.port).start()
        prepare_store(self.pg_url)
        box = SecretBox.from_setting(self.receiver.secrets_keys)  # webhook secrets are sealed
        team = register_care_team(self.pg_url, self.patient_id, self.receiver.url, box=box)
        enrol(self.pg_url, [(self.gateway_id, self.patient_id)])  # ingest stores enrolled hubs
        self.team_id = team.team_id
        proxied = self.pg_url.replace(f":{self.postgres.port}/", f":{self.db_link.port}/")
        ingest_env_ = ingest_env(
            proxied, self.broker.port, f"g{self.tag}", f"ingest-{self.tag}",
            tsdb_url=self.vm.url, tsdb_token="test-token-0123456789abcdef", mirror_idle_ms="100",
            **(ingest_extra or {}),
        )  # fmt: skip
        self._add("ingest", [sys.executable, "-m", "ingest", "run"], ingest_env_)
        self._add("engine", [HOMEVITALS, "alerts", "run", "--db", self.pg_url, "--interval-s",
                             "0.5"], {})  # fmt: skip
        self._add("delivery", [sys.executable, "-m", "alerts.delivery"], {
            "HV_DELIVERY_DATABASE_URL": self.pg_url,
            "HV_DELIVERY_API_BASE_URL": "https://homevitals.example.org/api",
            "HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS": "true",
            "HV_DELIVERY_POLL_INTERVAL_S": "0.2",
            "HV_SECRETS_KEYS": self.receiver.secrets_keys,
        })  # fmt: skip
        self._add("freshness", [HOMEVITALS, "alerts", "freshness", "--db", self.pg_url,
                                "--interval-s", "0.5"], {})  # fmt: skip
        for name in ("ingest", "engine", "delivery"):
            self.procs[name].start()
        self.meter: GlucoseMeter = make_meter(self.air, serial=f"FS{self.tag}",
                                              model="contour-like")  # fmt: skip
        now = datetime.now(UTC)
        for i in range(records):  # every 30 min up to an hour ago
            at = now - timedelta(hours=1, minutes=30 * (records - 1 - i))
            self.meter.take_reading(90 + (i * 7) % 120, at_utc=at)
        self.meter.take_reading(HYPO_MG_DL, at_utc=now - timedelta(minutes=20))
        await self.meter.power_on()
        self.endpoint: HciEndpoint = await open_hci_endpoint(self.air)
        self.settings = self._hub_settings()
        pair = await asyncio.create_subprocess_exec(
            HOMEVITALS, "gateway", "pair", self.meter.address, "--patient", self.patient_id,
            "--passkey", "246810", "--settings", str(self.settings), "--scan-s", "1",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(pair.communicate(), 120)
        assert pair.returncode == 0, out.decode()
        self._add("hub", [sys.executable, "-m", "gateway", "--settings", str(self.settings),
                          "--log-level", "INFO"], {})  # fmt: skip

    def _add(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.procs[name] = Proc(name, argv, env, self.workdir / f"{name}.log")

    def _hub_settings(self) -> Path:
        path = self.workdir / "gateway.toml"
        path.write_text(
            f'gateway_id = "{self.gateway_id}"\ndata_dir = "{self.hub_dir}"\n'
            f'mqtt_host = "127.0.0.1"\nmqtt_port = {self.hub_link.port}\n'
            f"mqtt_keepalive_s = {self.keepalive_s}\n"
            f'ble_transport = "{self.endpoint.spec}"\n'
            "pace_s = 0.0\nscan_s = 0.5\nmeter_sync_interval_s = 1.0\nscan_idle_s = 0.2\n"
            "silence_timeout_s = 2.0\noperation_timeout_s = 5.0\n"
            f"resend_first_s = {self.resend_first_s}\n"
            f"resend_max_s = {max(4.0, self.resend_first_s)}\nmax_batch_bytes = 4000\n"
            "heartbeat_s = 2.0\npage_enabled = false\n"
        )
        return path

    def proc(self, name: str) -> Proc:
        return self.procs[name]

    # -------------------------------------------------------------------------- the stages

    def produced(self) -> dict[str, Content]:
        """Every record the meter's firmware holds, by the reading id the hub must give it."""
        ident = self.meter.identity
        device_id = device_id_for(manufacturer=ident.manufacturer, model=ident.model,
                                  serial=ident.serial)  # fmt: skip
        out: dict[str, Content] = {}
        for record in self.meter.racp.records:
            m = record.measurement
            value = m.concentration_mmol_l
            assert isinstance(value, float) and isinstance(m.base_time, datetime)
            device_time = m.base_time.isoformat()
            rid = reading_id_for(
                device_id=device_id,
                kind=Kind.GLUCOSE,
                sequence=m.sequence_number,
                device_time=device_time,
            )
            out[rid] = (value, device_time)  # fmt: skip
        return out

    def hub_ids(self) -> list[str]:
        path = self.hub_dir / "gateway.sqlite"
        if not path.exists():
            return []
        box = Outbox(path)
        try:
            return box.reading_ids()
        finally:
            box.close()

    def stored(self) -> list[tuple[str, Content]]:
        engine = sa.create_engine(self.pg_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT reading_id, glucose_mmol_l, device_time FROM readings"
                    " WHERE patient_id = :p"), {"p": self.patient_id}).all()  # fmt: skip
        finally:
            engine.dispose()
        return [(str(r[0]), (float(r[1]), r[2])) for r in rows]

    def mirrored(self) -> list[str]:
        engine = sa.create_engine(self.pg_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT reading_id, device_id, measured_at FROM readings"
                    " WHERE patient_id = :p"), {"p": self.patient_id}).all()  # fmt: skip
        finally:
            engine.dispose()
        by_key = {(str(d), int(t.timestamp() * 1000)): str(r) for r, d, t in rows}
        self.vm.force_flush()
        out = []
        for (name, _patient, device, ts), count in vm_samples(self.vm.url, self.patient_id).items():
            if name == "glucose_glucose_mmol_l":
                rid = by_key.get((device, ts), f"unknown:{device}:{ts}")
                out += [rid] * count
        return out

    def findings(self, rule_id: str) -> list[tuple[str, dict[str, object]]]:
        """(status, evidence) of this patient's episodes of `rule_id`, oldest first."""
        engine = sa.create_engine(self.pg_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT status, evidence FROM alerts WHERE patient_id = :p AND rule_id = :r"
                    " ORDER BY opened_at"), {"p": self.patient_id, "r": rule_id}).all()  # fmt: skip
        finally:
            engine.dispose()
        return [(str(s), dict(e)) for s, e in rows]

    def received(self, event_type: str, rule_id: str) -> bool:
        """True once the care team's receiver verified an event of this type and rule."""
        return any(r.verified and r.event()["type"] == event_type
                   and r.event()["data"].get("rule_id") == rule_id  # type: ignore[attr-defined]
                   for r in self.receiver.received)  # fmt: skip

    def raised(self) -> list[tuple[str, str]]:
        engine = sa.create_engine(self.pg_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT rule_id, event_id FROM alert_events WHERE type = 'alert.opened'"
                    " AND patient_id = :p"), {"p": self.patient_id}).all()  # fmt: skip
        finally:
            engine.dispose()
        return [(str(r), str(e)) for r, e in rows]

    def delivered(self) -> list[str]:
        return [r.webhook_id for r in self.receiver.received if r.verified
                and r.event()["type"] == "alert.opened"]  # fmt: skip

    def ledger(self, expected_alerts: Mapping[str, int], *, mirror: bool = True) -> LedgerReport:
        readings = check_readings(
            self.produced(), self.hub_ids(), self.stored(), self.mirrored() if mirror else None
        )
        alerts = check_alerts(expected_alerts, self.raised(), sorted(set(self.delivered())))
        return report(readings, alerts)

    def complete(self) -> bool:
        """Every produced reading stored and mirrored, the hub's outbox drained, alerts out."""
        produced = set(self.produced())
        stored = {i for i, _ in self.stored()}
        if not produced <= stored:
            return False
        outbox = Outbox(self.hub_dir / "gateway.sqlite")
        try:
            pending = outbox.stats(datetime.now(UTC)).pending
        finally:
            outbox.close()
        if pending or not self.delivered():
            return False
        # ...and mirrored: the mirror follows the store at its own pace (after a fault, a
        # backlog), so a ledger read as soon as the store is complete finds it behind.
        return produced <= set(self.mirrored())

    def hub_pending(self) -> int:
        """Readings in the hub's outbox not yet receipted by ingest."""
        outbox = Outbox(self.hub_dir / "gateway.sqlite")
        try:
            return outbox.stats(datetime.now(UTC)).pending
        finally:
            outbox.close()

    async def close(self) -> None:
        # The ledger was read: no orderly shutdown needed, and SIGTERMs one by one are slow.
        for proc in self.procs.values():
            if proc.alive():
                proc.kill()
        for link in (getattr(self, "hub_link", None), getattr(self, "db_link", None)):
            if link is not None:
                link.close()
        if hasattr(self, "endpoint"):
            await self.endpoint.close()
        if hasattr(self, "broker"):
            self.broker.stop()
