"""End-to-end latency: a simulated cuff indicates a reading -> the gateway commits it and
publishes it -> Mosquitto -> ingest -> PostgreSQL -> the rules engine -> the delivery worker ->
the care team's verifying receiver. p50/p99 at a few steady reading rates, next to the raw MQTT
round trip measured in the same run.

    python -m bench.bench_e2e [--rates 10,50,100] [--backend-rates 200,500,1000]
                              [--window 10] [--probes 10] [--load-cuffs 150] [--quick]

Set-up: Omron-like cuffs on one virtual air, paired to one gateway and kept connected by their sync
sessions (devices and gateway in this process, as in the demo); ingest, the rules engine
(`homevitals alerts run`), the delivery worker (`python -m alerts.delivery`) and the receiver
(`homevitals webhook receive`) are subprocesses with their shipped defaults (the engine and the
worker are woken by PostgreSQL NOTIFY at each commit; `--engine-interval-s` and `--delivery-poll-s`
override their fallback polls), the record store is PostgreSQL 15 from Debian. CPU of each backend
process is read from /proc: idle for `--idle-s` before and after the load, and during each MQTT-
injected rate. Load: `--load-cuffs` cuffs share the rate with normal readings (no alert). Probes:
for each rate, `--probes` other cuffs (one patient each) measure one low reading (85/55 mmHg,
`bp.hypotension`) at even intervals inside the window; latency = from the start of the probe's cuff
cycle (ICP notifications then the indication) to the receiver printing its verified `alert.opened`
(read from its stdout here). Baseline: paho QoS 1 publish -> Mosquitto -> paho subscriber in this
process, same rate, same window, one 300-byte message per reading. Second path (`--backend-rates`):
gateway-format batches (one every 10 ms) published straight to Mosquitto at rates the cuff fleet
cannot make here (a cuff stamps whole seconds, so each cuff makes under one reading per second and
the virtual air carries about 200 links), with probes among them; latency from the publish of the
probe's batch to the receiver.
Results are appended to bench/RESULTS.md with machine info. `--quick`: 10 readings/s over BLE
(15 load cuffs) and 1,000 readings/s MQTT-injected, 40 probes each, 10 s idle windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from bench import common
from careteam.secrets import SecretBox, new_key_entry
from devices import DeviceInfo, Kind, Reading, device_id_for, reading_id_for
from devices.wire import encode_batch, readings_topic
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.models import get_model
from gateway.app import mqtt_config, open_hub, utc_now
from gateway.delivery import publish_loop, receipt_loop
from gateway.publisher import Publisher
from gateway.settings import load_settings
from homevitals.demo_procs import (
    Service,
    child_env,
    free_port,
    mosquitto_service,
    python_argv,
    wait_for_port,
)
from homevitals.demo_record import (
    enrol_hub,
    follow_with_consent,
    prepare_store,
    register_care_team,
)
from homevitals.demo_report import parse_webhook_line
from ingest.store import make_engine
from tests.support.servers import PostgresServer

RESULTS = Path(__file__).with_name("RESULTS.md")
MIN_CUFF_INTERVAL_S = 1.1
MQTT_LOAD_PATIENTS = 500  # the MQTT-injected load's readings go to this many patients
LOW = (85.0, 55.0, 72.0)  # bp.hypotension (< 90/60), a per-reading rule: opens on one reading


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mqtt_baseline(port: int, rate: float, window_s: float) -> list[float]:
    """Per-message QoS 1 latency publish -> subscriber (seconds), paced at `rate` msg/s."""
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = threading.Event()
    total = int(rate * window_s)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        seq = int.from_bytes(msg.payload[:4], "big")
        latencies.append(time.perf_counter() - sent[seq])
        if len(latencies) >= total:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-e2e-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("bench/e2e", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-e2e-pub", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)
    start = time.perf_counter()
    for seq in range(total):
        target = start + seq / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[seq] = time.perf_counter()
        pub.publish("bench/e2e", seq.to_bytes(4, "big") + b"x" * 296, qos=1)
    done.wait(30)
    for client in (pub, sub):
        client.loop_stop()
        client.disconnect()
    return latencies


def _reading(patient: str, serial: str, n: int, low: bool, at: datetime) -> Reading:
    device_id = device_id_for(manufacturer="Bench", model="BP1", serial=serial)
    device_time = at.strftime("%Y-%m-%dT%H:%M:%S")
    sys_mmhg, dia_mmhg = (LOW[0], LOW[1]) if low else (112.0 + n % 25, 74.0)
    return Reading(
        reading_id=reading_id_for(device_id=device_id, kind=Kind.BLOOD_PRESSURE, sequence=n,
                                  device_time=device_time),
        patient_id=patient, gateway_id="gw-bench-mqtt",
        device=DeviceInfo(device_id, "Bench", "BP1", serial, "1.0"),
        kind=Kind.BLOOD_PRESSURE, measured_at=at, received_at=at,
        values={"systolic_mmhg": sys_mmhg, "diastolic_mmhg": dia_mmhg, "pulse_per_min": 66.0},
        sequence=n, device_time=device_time,
    )  # fmt: skip


class Bench:
    """One run: servers, subprocesses, air, cuffs, gateway."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.workdir = workdir
        self.args = args
        self.services: list[Service] = []
        self.arrivals: dict[str, float] = {}  # patient id -> receiver printed alert.opened
        self.made = 0
        self.cuffs: list[BloodPressureCuff] = []
        self.engine: sa.Engine
        self.idle_start: dict[str, float] = {}
        self.idle_end: dict[str, float] = {}
        self.load_cpu: dict[float, dict[str, float]] = {}
        self.db_url = ""
        self.secrets_keys = new_key_entry()

    def _on_line(self, line: str) -> None:
        hook = parse_webhook_line(line)
        if hook is None or hook.type != "alert.opened" or hook.rule_id != "bp.hypotension":
            return
        data = hook.body.get("data")
        patient = data.get("patient") if isinstance(data, dict) else None
        ref = patient.get("reference") if isinstance(patient, dict) else None
        if isinstance(ref, str):
            self.arrivals.setdefault(ref.removeprefix("Patient/"), time.perf_counter())

    async def _start(self, service: Service, port: int | None = None) -> None:
        await service.start()
        self.services.append(service)
        if port is not None:
            await wait_for_port(port, service)

    async def run(self, db_url: str) -> list[dict[str, float]]:
        self.db_url = db_url
        mqtt_port = free_port()
        await self._start(mosquitto_service(self.workdir, mqtt_port), mqtt_port)
        await asyncio.to_thread(prepare_store, db_url)
        rates = [float(r) for r in self.args.rates.split(",")]
        probe_patients = [f"probe-{int(r)}-{i}" for r in rates for i in range(self.args.probes)]
        recv_port = free_port()
        url = f"http://127.0.0.1:{recv_port}/hooks"
        box = SecretBox.from_setting(self.secrets_keys)
        teams = [
            await asyncio.to_thread(register_care_team, db_url, patient, url, box=box)
            for patient in probe_patients[:1]
        ]
        # One team follows every probe patient (the registry's assign is per patient).
        self.engine = make_engine(db_url)
        with self.engine.begin() as conn:
            for patient in probe_patients[1:]:
                follow_with_consent(conn, teams[0].team_id, patient, datetime.now(UTC))
        await self._start(
            Service(
                "receiver",
                python_argv(
                    "-m",
                    "homevitals",
                    "webhook",
                    "receive",
                    "--secret",
                    teams[0].secret,
                    "--port",
                    str(recv_port),
                ),
                self.workdir,
                env=child_env({}),
                on_line=self._on_line,
            ),
            recv_port,
        )
        await self._start(
            Service(
                "ingest",
                python_argv("-m", "ingest", "run"),
                self.workdir,
                env=child_env(
                    {
                        "HV_INGEST_DB_URL": db_url,
                        "HV_INGEST_MQTT_PORT": str(mqtt_port),
                        "HV_INGEST_CLIENT_ID": "ingest-bench",
                    }
                ),
            )
        )
        await self._start(
            Service(
                "alerts",
                python_argv(
                    "-m",
                    "homevitals",
                    "alerts",
                    "run",
                    "--db",
                    db_url,
                    "--deliver",
                    *self._engine_flags(),
                ),
                self.workdir,
                env=child_env({}),
            )
        )
        await self._start(
            Service(
                "delivery",
                python_argv("-m", "alerts.delivery"),
                self.workdir,
                env=child_env(
                    {
                        "HV_DELIVERY_DATABASE_URL": db_url,
                        "HV_DELIVERY_API_BASE_URL": "http://127.0.0.1:1/v1",
                        "HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS": "true",
                        **(
                            {"HV_DELIVERY_POLL_INTERVAL_S": str(self.args.delivery_poll_s)}
                            if self.args.delivery_poll_s
                            else {}
                        ),
                        "HV_SECRETS_KEYS": self.secrets_keys,
                    }
                ),
            )
        )
        print("backend up; idle CPU", flush=True)
        await asyncio.sleep(2.0)  # start-up work (migrations, first full step) out of the way
        self.idle_start = await asyncio.to_thread(self.idle_cpu, self.args.idle_s)
        print(f"idle CPU % {self.idle_start}; MQTT baseline", flush=True)
        baselines = {
            r: await asyncio.to_thread(mqtt_baseline, mqtt_port, r, self.args.window) for r in rates
        }
        print("baseline done; cuffs", flush=True)
        rows = await self._cuffs(mqtt_port, rates, probe_patients)
        for row in rows:
            base = baselines[row["rate"]]
            row["mqtt_p50_ms"] = 1000 * statistics.median(base)
            row["mqtt_p99_ms"] = 1000 * _pct(base, 0.99)
        backend_rates = [float(r) for r in self.args.backend_rates.split(",") if r]
        if backend_rates:
            patients = [
                f"mqtt-{int(r)}-{i}" for r in backend_rates for i in range(self.args.probes)
            ]
            with self.engine.begin() as conn:
                for patient in patients:
                    follow_with_consent(conn, teams[0].team_id, patient, datetime.now(UTC))
            # The load's patients too: ingest quarantines readings of patients the hub does not
            # serve (`not_enrolled`), which would leave the engine nothing but the probes.
            load_patients = [f"mload-{i}" for i in range(MQTT_LOAD_PATIENTS)]
            await asyncio.to_thread(
                enrol_hub, self.db_url, "gw-bench-mqtt", patients + load_patients
            )
            for k, rate in enumerate(backend_rates):
                mine = patients[k * self.args.probes : (k + 1) * self.args.probes]
                row = await asyncio.to_thread(self._backend_step, mqtt_port, rate, mine)
                base = await asyncio.to_thread(mqtt_baseline, mqtt_port, rate, self.args.window)
                row["mqtt_p50_ms"] = 1000 * statistics.median(base)
                row["mqtt_p99_ms"] = 1000 * _pct(base, 0.99)
                print(row, flush=True)
                rows.append(row)
        self.idle_end = await asyncio.to_thread(self.idle_cpu, self.args.idle_s)
        print(f"idle CPU % after the load {self.idle_end}", flush=True)
        return rows

    def _engine_flags(self) -> list[str]:
        interval = self.args.engine_interval_s
        return ["--interval-s", str(interval)] if interval else []

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each backend process."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for service in self.services:
            if service.proc is None or service.name == "mosquitto":
                continue
            try:
                fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1]
            except OSError:
                continue
            parts = fields.split()
            out[service.name] = (int(parts[11]) + int(parts[12])) / tick
        return out

    def idle_cpu(self, window_s: float) -> dict[str, float]:
        """CPU % of each backend process over `window_s` seconds with no readings coming in."""
        before, t0 = self.cpu_s(), time.perf_counter()
        time.sleep(window_s)
        after, elapsed = self.cpu_s(), time.perf_counter() - t0
        return {k: round(100 * (after[k] - before[k]) / elapsed, 2) for k in after if k in before}

    def _backend_step(self, port: int, rate: float, probes: list[str]) -> dict[str, float]:
        """Gateway-format batches published straight to Mosquitto (no BLE) at `rate`, one
        batch every 10 ms, probes among them; latency from publish to the receiver."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-bench-mqtt-{rate:g}",
                             protocol=mqtt.MQTTv5)  # fmt: skip
        client.connect("127.0.0.1", port)
        client.loop_start()
        topic = readings_topic("gw-bench-mqtt")
        total = int(rate * self.args.window)
        per_batch = max(1, round(rate / 100))
        probe_every = max(1, total // len(probes))
        sent: dict[str, float] = {}
        start = time.perf_counter()
        cpu0 = os.times()
        procs0 = self.cpu_s()
        n = 0
        while n < total:
            target = start + n / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            batch = []
            for _ in range(min(per_batch, total - n)):
                idx = n // probe_every
                at = datetime.now(UTC).replace(microsecond=0)
                if n % probe_every == 0 and idx < len(probes):
                    batch.append(_reading(probes[idx], f"P{rate:g}-{idx}", 0, True, at))
                    sent[probes[idx]] = time.perf_counter()
                else:
                    patient = f"mload-{n % MQTT_LOAD_PATIENTS}"
                    batch.append(_reading(patient, f"L{rate:g}-{n}", n, False, at))
                n += 1
            client.publish(topic, encode_batch("gw-bench-mqtt", batch), qos=1)
        made_s = time.perf_counter() - start
        self.made += total
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and (
            not set(sent) <= set(self.arrivals) or self._stored() < self.made
        ):
            time.sleep(0.05)
        cpu1 = os.times()
        procs1, elapsed = self.cpu_s(), time.perf_counter() - start
        self.load_cpu[rate] = {
            k: round(100 * (procs1[k] - procs0[k]) / elapsed) for k in procs1 if k in procs0
        }
        client.loop_stop()
        client.disconnect()
        latencies = [self.arrivals[p] - t for p, t in sent.items() if p in self.arrivals]
        return {
            "path": 1.0,
            "rate": rate,
            "achieved": total / made_s,
            "probes": len(sent),
            "received": len(latencies),
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * _pct(latencies, 0.99) if latencies else float("nan"),
            "max_ms": 1000 * max(latencies) if latencies else float("nan"),
            "bench_cpu_pct": 100
            * (cpu1.user + cpu1.system - cpu0.user - cpu0.system)
            / (time.perf_counter() - start),
            "late": 0,
            "made_total": self.made,
            "stored_total": self._stored(),
        }

    async def _cuffs(
        self, mqtt_port: int, rates: list[float], probe_patients: list[str]
    ) -> list[dict[str, float]]:
        n_load = self.args.load_cuffs
        total = n_load + len(probe_patients)
        settings = load_settings(
            None,
            gateway_id="gw-bench",
            data_dir=self.workdir / "gateway",
            mqtt_port=mqtt_port,
            ble_transport="virtual",
            max_connections=min(200, total),
            pace_s=0.0,
            silence_timeout_s=1.0,
            connect_timeout_s=20.0,
            page_enabled=False,
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, float]] = []
        async with VirtualAir(supervision_timeout_s=5.0) as air:
            model = get_model("omron-like")
            cuffs = [
                BloodPressureCuff(
                    air,
                    model,
                    serial=f"E2EB{i:06d}",
                    address=f"D2:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}",
                    advertising_interval_ms=50,
                )
                for i in range(total)
            ]
            for cuff in cuffs:
                await cuff.power_on()
            patients = [f"load-{i}" for i in range(n_load)] + probe_patients
            await asyncio.to_thread(enrol_hub, self.db_url, settings.gateway_id, patients)
            print(f"{total} cuffs on the air", flush=True)
            async with (
                open_hub(settings, air=air) as hub,
                Publisher(settings.gateway_id, mqtt_config(settings)) as publisher,
            ):
                await publisher.wait_connected(10)
                loops = [
                    asyncio.create_task(
                        publish_loop(hub.outbox, publisher, utc_now, hub.gateway.wake, poll_s=0.1)
                    ),
                    asyncio.create_task(receipt_loop(hub.outbox, publisher, utc_now)),
                ]
                seen = {s.address: s for s in await hub.gateway.discover(2.0)}
                print(f"heard {len(seen)} of {total} cuffs", flush=True)
                for start in range(0, total, 20):  # pair in groups (connection set-up is serial)
                    await asyncio.gather(
                        *(
                            hub.gateway.pair(c.address, p, scan_s=1.0)
                            for c, p in zip(
                                cuffs[start : start + 20], patients[start : start + 20], strict=True
                            )
                        )
                    )
                paired = {p.address: p for p in hub.registry.all()}
                # Pairing sessions end on a short silence; the sync sessions stay connected.
                hub.gateway.tuning = replace(hub.gateway.tuning, silence_timeout_s=600.0)
                sessions = [
                    asyncio.create_task(hub.gateway.sync(paired[c.address], seen[c.address]))
                    for c in cuffs
                    if c.address in paired
                ]
                # Every sync session connected and subscribed (its cuff sent its memory again).
                async with asyncio.timeout(120):
                    while not all(c.transfers_done >= 2 for c in cuffs):  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                print(f"paired {len(paired)} of {total} cuffs", flush=True)
                load, probes = cuffs[:n_load], cuffs[n_load:]
                self.cuffs = cuffs
                for k, rate in enumerate(rates):
                    mine = probes[k * self.args.probes : (k + 1) * self.args.probes]
                    mine_patients = probe_patients[
                        k * self.args.probes : (k + 1) * self.args.probes
                    ]
                    rows.append(await self._step(rate, load, mine, mine_patients))
                    print(rows[-1], flush=True)
                for task in [*sessions, *loops]:
                    task.cancel()
                await asyncio.gather(*sessions, *loops, return_exceptions=True)
        return rows

    async def _step(
        self,
        rate: float,
        load: list[BloodPressureCuff],
        probes: list[BloodPressureCuff],
        probe_patients: list[str],
    ) -> dict[str, float]:
        window = self.args.window
        total = int(rate * window)
        probe_every = max(1, total // len(probes))
        sent: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        start = loop.time()
        cpu0 = os.times()
        pending: set[asyncio.Task[object]] = set()
        late = 0
        for i in range(total):
            target = start + i / rate
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:
                late += 1
            probe_index = i // probe_every
            if i % probe_every == 0 and probe_index < len(probes):
                patient = probe_patients[probe_index]
                sent[patient] = time.perf_counter()
                coro = probes[probe_index].measure(*LOW)
            else:
                cuff = load[i % len(load)]
                coro = cuff.measure(112 + i % 25, 74, 66)
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)
        made_s = loop.time() - start
        await asyncio.gather(*pending, return_exceptions=True)
        # A cuff stamps whole seconds: two cycles in one second are one reading (one id).
        self.made = sum(len({r.measurement.time_stamp for r in c.memory}) for c in self.cuffs)
        deadline = loop.time() + 30
        while loop.time() < deadline and not set(sent) <= set(self.arrivals):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        cpu1 = os.times()
        while loop.time() < deadline and await asyncio.to_thread(self._stored) < self.made:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        latencies = [self.arrivals[p] - t for p, t in sent.items() if p in self.arrivals]
        return {
            "rate": rate,
            "achieved": total / made_s,
            "probes": len(sent),
            "received": len(latencies),
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * _pct(latencies, 0.99) if latencies else float("nan"),
            "max_ms": 1000 * max(latencies) if latencies else float("nan"),
            "bench_cpu_pct": 100
            * (cpu1.user + cpu1.system - cpu0.user - cpu0.system)
            / (loop.time() - start),
            "late": late,
            "made_total": self.made,
            "stored_total": await asyncio.to_thread(self._stored),
        }

    def _stored(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one())

    async def stop(self) -> None:
        if hasattr(self, "engine"):
            self.engine.dispose()
        while self.services:
            await self.services.pop().stop()


def _cpu_line(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {pct:g}%" for name, pct in sorted(cpu.items()))


def _append(bench: Bench, rows: list[dict[str, float]], args: argparse.Namespace,
            machine: str) -> str:  # fmt: skip
    engine = f"`--interval-s {args.engine_interval_s:g}`" if args.engine_interval_s else (
        "shipped defaults: `homevitals alerts run` woken by NOTIFY, fallback poll 5 s"
    )  # fmt: skip
    delivery = (
        f"poll {args.delivery_poll_s:g} s"
        if args.delivery_poll_s
        else "shipped defaults: woken by NOTIFY, fallback 5 s"
    )
    lines = [
        "",
        f"## end to end: cuff indication to verified webhook ({common.stamp()})",
        "",
        f"Machine: {machine}. Everything below (virtual air, cuffs, gateway, Mosquitto, ingest,",
        "PostgreSQL, the rules engine, the delivery worker, the receiver) runs on it at once.",
        "",
        f"`python -m bench.bench_e2e --rates {args.rates} --backend-rates {args.backend_rates} "
        f"--window {args.window:g} --probes {args.probes} --load-cuffs {args.load_cuffs}`: "
        f"{args.load_cuffs} load cuffs plus {args.probes} probe cuffs per rate, all connected "
        f"to one gateway; engine: {engine}; delivery worker: {delivery}; ingest: shipped "
        "defaults; PostgreSQL 15. Probe latency = start of the probe's cuff cycle (or the "
        "publish of its batch, MQTT-injected rows) to the receiver printing the verified "
        "`alert.opened`. Baseline: paho QoS 1 publish -> Mosquitto -> subscriber, same rate, "
        "same run.",
        "",
        "| path | readings/s asked | achieved | stored / made (cumulative) | probes received "
        "| e2e p50 ms | e2e p99 ms | e2e max ms | MQTT p50 ms | MQTT p99 ms "
        "| bench process CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {'MQTT-injected batches' if r.get('path') else 'cuffs over BLE'} "
            f"| {r['rate']:.0f} | {r['achieved']:.0f} "
            f"| {r['stored_total']:.0f} / {r['made_total']:.0f} "
            f"| {r['received']:.0f}/{r['probes']:.0f} "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} "
            f"| {r['mqtt_p50_ms']:.1f} | {r['mqtt_p99_ms']:.1f} | {r['bench_cpu_pct']:.0f} |"
        )
    short = [r for r in rows if r["stored_total"] < r["made_total"]]
    if short:  # the load did not reach the record store: the latencies above are not under it
        lines += [
            "",
            f"**Not every reading was stored** ({short[-1]['stored_total']:.0f} of "
            f"{short[-1]['made_total']:.0f}, 30 s after the last): the rows above did not run "
            "under the load they name.",
        ]
    lines += [
        "",
        f"CPU of the backend processes (% of one core), idle for {args.idle_s:g} s before the "
        f"load: {_cpu_line(bench.idle_start)}; idle after the load: {_cpu_line(bench.idle_end)}.",
    ]
    for rate, cpu in bench.load_cpu.items():
        lines.append(f"During the MQTT-injected {rate:.0f} readings/s: {_cpu_line(cpu)}.")
    text = "\n".join(lines) + "\n"
    return text


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and append its results to bench/RESULTS.md."""
    parser = common.parser("bench_e2e", __doc__)
    parser.add_argument("--rates", default="10,50,100")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument(
        "--backend-rates",
        default="200,500,1000",
        help="rates for gateway batches published straight to MQTT (no BLE)",
    )
    parser.add_argument("--load-cuffs", type=int, default=150)
    parser.add_argument(
        "--engine-interval-s", type=float, default=0.0, help="override (default: shipped)"
    )
    parser.add_argument(
        "--delivery-poll-s", type=float, default=0.0, help="override (default: shipped)"
    )
    parser.add_argument("--idle-s", type=float, default=20.0, help="idle CPU window")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.load_cuffs, args.probes, args.backend_rates = "10", 15, 40, "1000"
        args.idle_s = 10.0
    fastest = max(float(r) for r in args.rates.split(","))
    if args.load_cuffs / fastest < MIN_CUFF_INTERVAL_S:
        parser.error(
            f"--load-cuffs {args.load_cuffs} at {fastest:g}/s is faster than one reading per "
            f"{MIN_CUFF_INTERVAL_S} s per cuff: a cuff stamps whole seconds, so two readings in "
            "one second are one reading (the same id)"
        )
    load_start = common.load_1min()
    workdir = Path(tempfile.mkdtemp(prefix="hv-bench-e2e-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="hv-bench-e2e-pg-"))
    postgres = PostgresServer(pg_dir)
    postgres.start()
    bench = Bench(workdir, args)

    async def go() -> list[dict[str, float]]:
        try:
            return await bench.run(postgres.create_database("bench_e2e"))
        finally:
            await bench.stop()

    try:
        rows = asyncio.run(go())
    finally:
        postgres.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)
    for row in rows:
        print(json.dumps(row))
    common.write(_append(bench, rows, args, common.machine(load_start)), args)
    print(f"logs in {workdir}")


if __name__ == "__main__":
    main()
