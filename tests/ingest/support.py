"""Test support for ingest: readings, a gateway-like publisher, ingest as a subprocess, checks.

`GatewaySim` stands in for the real gateway (written separately): it keeps every published
message in an outbox until a receipt from ingest names all of its readings (committed or
quarantined), and resends what is outstanding, as the real gateway's outbox will. With
``resend=False`` it publishes once and trusts the broker's PUBACK (what the tests use to prove
ingest's own at-least-once guarantees, and what the loss checker must catch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from devices import DeviceInfo, Kind, Reading, device_id_for, reading_id_for
from devices.wire import decode_receipt, encode_batch, readings_topic, receipts_topic
from ingest import schema

ROOT = Path(__file__).parents[2]
BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)


def make_reading(gateway_id: str, patient_id: str, serial: str, sequence: int) -> Reading:
    """A valid glucose (even sequence) or blood-pressure (odd) reading."""
    kind = Kind.GLUCOSE if sequence % 2 == 0 else Kind.BLOOD_PRESSURE
    device_id = device_id_for(manufacturer="Acme", model="M1", serial=serial)
    measured = BASE_TIME + timedelta(minutes=sequence)
    device_time = measured.strftime("%Y-%m-%dT%H:%M:%S")
    values: dict[str, float] = (
        {"glucose_mmol_l": 4.0 + (sequence % 50) / 10}
        if kind is Kind.GLUCOSE
        else {"systolic_mmhg": 110.0 + sequence % 40, "diastolic_mmhg": 70.0, "pulse_per_min": 66.0}
    )
    return Reading(
        reading_id=reading_id_for(
            device_id=device_id, kind=kind, sequence=sequence, device_time=device_time
        ),
        patient_id=patient_id,
        gateway_id=gateway_id,
        device=DeviceInfo(device_id, "Acme", "M1", serial, "1.0"),
        kind=kind,
        measured_at=measured,
        received_at=measured + timedelta(seconds=30),
        values=values,
        sequence=sequence,
        device_time=device_time,
        context={"meal": "preprandial"} if kind is Kind.GLUCOSE else {},
    )


@dataclass
class Outgoing:
    """One message in the simulated outbox."""

    payload: bytes
    ids: frozenset[str]


def batch_payload(gateway_id: str, readings: list[Reading]) -> Outgoing:
    return Outgoing(encode_batch(gateway_id, readings), frozenset(r.reading_id for r in readings))


class GatewaySim:
    """A gateway's MQTT side with an outbox: resend until ingest's receipt retires a message."""

    def __init__(
        self, port: int, gateway_id: str, *, resend: bool = True, resend_after_s: float = 2.0
    ) -> None:
        self.gateway_id = gateway_id
        self.resend = resend
        self.resend_after_s = resend_after_s
        self.receipted: set[str] = set()
        self.conflicts: set[str] = set()
        self.quarantined: set[str] = set()
        self.receipts = 0
        self._lock = threading.Lock()
        self._outbox: list[tuple[Outgoing, float]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{gateway_id}", protocol=mqtt.MQTTv5
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.max_inflight_messages_set(100)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port, 30)
        self._client.loop_start()
        assert self._subscribed.wait(15), "gateway sim could not subscribe to its receipts"

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(receipts_topic(self.gateway_id), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        receipt = decode_receipt(msg.payload)
        with self._lock:
            self.receipts += 1
            self.receipted.update(receipt.committed)
            self.receipted.update(receipt.quarantined)
            self.quarantined.update(receipt.quarantined)
            self.conflicts.update(receipt.conflicts)

    def publish(self, item: Outgoing, *, wait: bool = True) -> None:
        """Publish (QoS 1); a message carrying reading ids is outstanding until receipted."""
        info = self._client.publish(readings_topic(self.gateway_id), item.payload, qos=1)
        if wait:
            info.wait_for_publish(15)
        if item.ids:
            with self._lock:
                self._outbox.append((item, time.monotonic()))

    def publish_raw(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(15)

    def outstanding(self) -> int:
        """Messages not yet fully receipted (resending those that are due, if resending)."""
        now = time.monotonic()
        due: list[Outgoing] = []
        with self._lock:
            keep = []
            for item, sent in self._outbox:
                if item.ids <= self.receipted:
                    continue
                if self.resend and now - sent >= self.resend_after_s:
                    due.append(item)
                    keep.append((item, now))
                else:
                    keep.append((item, sent))
            self._outbox = keep
        for item in due:
            self._client.publish(readings_topic(self.gateway_id), item.payload, qos=1)
        return len(keep)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def wait_stable(value: Callable[[], int], quiet_s: float, timeout_s: float) -> int:
    """Wait until `value()` has not changed for `quiet_s`; return it."""
    deadline = time.monotonic() + timeout_s
    last, since = value(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    raise AssertionError(f"still changing after {timeout_s}s")


def drain(gateways: Iterable[GatewaySim], timeout_s: float) -> None:
    """Pump every outbox until all messages are receipted."""
    sims = list(gateways)
    wait_until(lambda: sum(g.outstanding() for g in sims) == 0, timeout_s, "all receipts")


class IngestProcess:
    """`python -m ingest run` as a real subprocess, with its log in a file."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str], *, workers: int = 1) -> None:
        self.log_path = workdir / f"{name}.log"
        self.env = env
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, *, may_exit: bool = False, **overrides: str) -> None:
        """Start a run; `overrides` (``failpoint="after_commit"``) apply to this run only.

        `may_exit`: the run may die at its failpoint before the start is seen through.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("HV_INGEST_")}
        env.update(self.env)
        env.update({f"HV_INGEST_{k.upper()}": v for k, v in overrides.items()})
        self.runs += 1
        log = self.log_path.open("ab")
        log.write(f"=== run {self.runs}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "run", "--log-level", "INFO"]
            + (["--workers", str(self.workers)] if self.workers > 1 else []),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        log.close()
        wait_until(
            lambda: self.last_run_log().count("subscribed to") >= self.workers or self.exited(),
            30,
            "ingest to subscribe",
        )
        assert may_exit or not self.exited(), self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def last_run_log(self) -> str:
        return self.log().split(f"=== run {self.runs}\n")[-1]

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def wait_killed(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def ingest_env(pg_url: str, port: int, group: str, client_id: str, **extra: str) -> dict[str, str]:
    env = {
        "HV_INGEST_DB_URL": pg_url,
        "HV_INGEST_MQTT_PORT": str(port),
        "HV_INGEST_SHARE_GROUP": group,
        "HV_INGEST_CLIENT_ID": client_id,
        "HV_INGEST_SESSION_EXPIRY_S": "120",
    }
    env.update({f"HV_INGEST_{k.upper()}": v for k, v in extra.items()})
    return env


def end_session(port: int, client_id: str) -> None:
    """Remove a persistent session from the broker (clean start, expiry 0)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    try:
        client.connect("127.0.0.1", port, 10, clean_start=True)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


@dataclass
class DeliveryReport:
    """What the loss checker found: expected ids not stored, and rows stored twice."""

    missing: set[str] = field(default_factory=set)
    duplicate_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and self.duplicate_rows == 0


def check_delivery(engine: sa.Engine, expected: set[str]) -> DeliveryReport:
    """The loss checker: every expected reading id stored, none stored twice."""
    r = schema.readings.c
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(sa.select(r.reading_id))]
    return DeliveryReport(expected - set(stored), len(stored) - len(set(stored)))


def reading_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(schema.readings)
        return int(conn.execute(query).scalar_one())


def vm_samples(base_url: str, patient_prefix: str) -> dict[tuple[str, str, str, int], int]:
    """Every sample VictoriaMetrics holds for the patients with this prefix, with its count
    (samples up to two days ahead too: the export ends at "now" unless told, and a hub whose
    clock runs ahead stamps readings in our future)."""
    match = '{patient_id=~"%s.*"}' % patient_prefix  # noqa: UP031
    end_s = int(time.time()) + 2 * 86400
    query = urllib.parse.urlencode({"match[]": match, "end": str(end_s)})
    with urllib.request.urlopen(f"{base_url}/api/v1/export?{query}", timeout=30) as resp:
        body = resp.read().decode()
    counts: dict[tuple[str, str, str, int], int] = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        series = json.loads(line)
        metric = series["metric"]
        for ts in series["timestamps"]:
            key = (metric["__name__"], metric["patient_id"], metric["device_id"], int(ts))
            counts[key] = counts.get(key, 0) + 1
    return counts


def expected_samples(readings: Iterable[Reading]) -> set[tuple[str, str, str, int]]:
    """The samples the mirror must have written for these readings (one per numeric value)."""
    out = set()
    for r in readings:
        ts = int(r.measured_at.timestamp() * 1000)
        for name in r.values:
            out.add((f"{r.kind.value}_{name}", r.patient_id, r.device.id, ts))
    return out
