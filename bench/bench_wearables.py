"""A hub with ten wearables at their real rates, plus meters and cuffs: CPU, memory, MQTT.

    python -m bench.bench_wearables [--window 240] [--patients 5] [--quick] [--no-write]

`--quick`: a 70 s steady window (about two minutes in all).

Per patient: a heart-rate strap notifying once a second (the hub summarizes each minute) and a
CGM recording every 5 minutes (the hub back-fills over the RACP every sync interval, here 60 s);
two glucose meters and two blood-pressure cuffs besides, each with a week of readings to
back-fill and a new reading now and then. Everything runs on one virtual air (fast timing) in
this process with the gateway (`tests.gateway.sims.hub`), publishing through a real Mosquitto to
a real MQTT peer that sends ingest's receipts, so readings are retired as in production.

Reported: CPU % of this process (devices and hub together: an upper bound for the hub), peak
RSS, MQTT reading messages per minute during the steady window (after pairing and back-fill),
payload bytes per reading per kind, and bytes per day per patient at the devices' real cadence
(1,440 heart-rate summaries, 288 CGM readings, and the meters' and cuffs' few readings a day).
Raw samples: the straps' samples forwarded to the time series (`hv/v1/gw/{id}/samples`, one
batch per minute, receipted by the peer as ingest does): payload bytes per sample and the
bytes per day per patient they add at 1 Hz (86,400 samples), next to the readings' figure
measured in the same run.
Results are appended to bench/RESULTS.md with the machine and load (`bench.common`).
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from bench import common
from devices.sample_wire import decode_sample_batches
from devices.wire import (
    Receipt,
    decode_batch,
    encode_receipt,
    gateway_id_from_topic,
    receipts_topic,
)
from firmware_sims.air import VirtualAir
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import get_model
from gateway.delivery import publish_loop, receipt_loop
from gateway.publisher import MqttConfig, Publisher
from tests.gateway.ingest_peer import IngestPeer
from tests.gateway.sims import PASSKEY, hub, make_cuff, make_meter, utcnow
from tests.support.servers import MosquittoServer

# Readings a day at each device's real cadence (meters: 4 fingersticks, cuffs: 2 x 2 readings).
PER_DAY = {"heart_rate": 1440, "cgm_glucose": 288, "glucose": 4, "blood_pressure": 4}


class CountingPeer(IngestPeer):
    """The receipting MQTT peer, also counting messages, readings and payload bytes."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: list[float] = []
        self.bytes_by_kind: Counter[str] = Counter()
        self.readings_by_kind: Counter[str] = Counter()
        self.rejected = 0
        self.sample_bytes = 0
        self.samples = 0
        self.sample_messages = 0
        super().__init__(host, port)
        self.client.subscribe("hv/v1/gw/+/samples", qos=0)  # as ingest does

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        gateway_id = gateway_id_from_topic(message.topic)
        if message.topic.endswith("/samples"):
            envelope = decode_sample_batches(bytes(message.payload), topic_gateway_id=gateway_id)
            with self.lock:
                self.rejected += len(envelope.rejected)
                self.sample_messages += 1
                self.sample_bytes += len(message.payload)
                self.samples += sum(len(b.dt_ms) for b in envelope.batches)
            receipt = Receipt((), sample_batches=tuple(b.batch_id for b in envelope.batches))
            client.publish(receipts_topic(gateway_id), encode_receipt(receipt), qos=1)
            return
        batch = decode_batch(
            bytes(message.payload), topic_gateway_id=gateway_id_from_topic(message.topic)
        )
        with self.lock:
            self.rejected += len(batch.rejected)
            self.messages.append(time.monotonic())
            share = len(message.payload) / max(1, len(batch.readings))
            for reading in batch.readings:
                self.bytes_by_kind[reading.kind.value] += int(share)
                self.readings_by_kind[reading.kind.value] += 1
        super()._on_message(client, userdata, message)


async def _run(
    window_s: float, patients: int, workdir: Path, broker: MosquittoServer
) -> dict[str, object]:
    now = datetime.now(UTC)
    async with VirtualAir(supervision_timeout_s=3.0) as air:
        straps = [
            HeartRateStrap(
                air, get_model("polar-like"), serial=f"H{i:05d}", address=f"E4:00:00:00:00:{i:02X}"
            )
            for i in range(patients)
        ]
        cgms = [
            ContinuousGlucoseMonitor(
                air, get_model("cgm-like"), serial=f"C{i:05d}", address=f"E5:00:00:00:00:{i:02X}",
                session_start_utc=now - timedelta(days=3), seed=i,
            )
            for i in range(patients)
        ]  # fmt: skip
        for cgm in cgms:
            cgm.advance_to(now)
        meters = [
            make_meter(air, serial=f"GM{i:010d}", address=f"E1:00:00:00:00:{i:02X}", records=28)
            for i in range(2)
        ]
        cuffs = [
            make_cuff(air, serial=f"BP{i:08d}", address=f"E2:00:00:00:00:{i:02X}", records=14)
            for i in range(2)
        ]
        devices = [*straps, *cgms, *meters, *cuffs]
        for device in devices:
            await device.power_on()
        peer = CountingPeer(broker.host, broker.port)
        async with hub(air, workdir, silence_timeout_s=3.0) as h:
            h.gateway.connector._slots = asyncio.Semaphore(8)
            h.gateway.connector._stream_slots = asyncio.Semaphore(patients)
            publisher = Publisher(h.gateway.gateway_id, MqttConfig(broker.host, broker.port))
            async with publisher:
                await publisher.wait_connected(10)
                samples = h.gateway.samples
                loops = [
                    asyncio.create_task(
                        publish_loop(
                            h.outbox, publisher, utcnow, h.gateway.wake, poll_s=0.5,
                            samples=samples,
                        )
                    ),
                    asyncio.create_task(receipt_loop(h.outbox, publisher, utcnow, samples)),
                ]  # fmt: skip
                await h.gateway.discover(2.0)
                for i, device in enumerate(devices):
                    patient = f"p{i % patients}"
                    await h.gateway.pair(device.address, patient, passkey=PASSKEY, scan_s=1.0)
                async with asyncio.timeout(120):
                    while h.outbox.stats(utcnow()).pending:  # noqa: ASYNC110 - polls SQLite
                        await asyncio.sleep(0.2)
                with peer.lock:
                    steady_from = len(peer.messages)
                    base = Counter(peer.readings_by_kind)
                cpu0, wall0 = os.times(), time.monotonic()
                rounds = asyncio.create_task(_rounds(h, cgms, meters, cuffs, window_s))
                await rounds
                wall = time.monotonic() - wall0
                cpu1 = os.times()
                await h.gateway.stop_streams()
                await h.gateway.summarize_streams()
                async with asyncio.timeout(60):
                    while h.outbox.stats(utcnow()).pending or (  # noqa: ASYNC110 - SQLite
                        samples is not None and samples.batch_counts()[0]
                    ):
                        await asyncio.sleep(0.2)
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
        peer.close()
    if peer.rejected:  # a bench of rejected readings would measure nothing real
        raise RuntimeError(f"the peer rejected {peer.rejected} readings")
    with peer.lock:
        steady = len(peer.messages) - steady_from
        per_reading = {
            k: peer.bytes_by_kind[k] / peer.readings_by_kind[k] for k in peer.readings_by_kind
        }
        window_readings = peer.readings_by_kind - base
        per_sample = peer.sample_bytes / max(1, peer.samples)
        sample_messages = peer.sample_messages
    per_patient_day = {
        kind: per_reading.get(kind, 0.0)
        * count
        * (1 if kind in ("heart_rate", "cgm_glucose") else 2 / patients)
        for kind, count in PER_DAY.items()
    }
    return {
        "cpu_pct": 100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "messages_per_min": steady * 60 / wall,
        "window_readings": dict(window_readings),
        "bytes_per_reading": per_reading,
        "bytes_per_day_patient": sum(per_patient_day.values()),
        "bytes_per_sample": per_sample,
        "sample_bytes_per_day_patient": per_sample * 86_400,
        "sample_messages": sample_messages,
        "samples": peer.samples,
        "wall_s": wall,
    }


async def _rounds(
    h: object,
    cgms: list[ContinuousGlucoseMonitor],
    meters: list[object],
    cuffs: list[object],
    window_s: float,
) -> None:
    """The hub's device loop for `window_s`: scan rounds (streams restart, CGMs and meters
    every 60 s), the devices recording at their real cadence meanwhile."""
    gateway = h.gateway  # type: ignore[attr-defined]
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        for cgm in cgms:
            cgm.advance_to(datetime.now(UTC))
        await gateway.sync_round(1.0, meter_interval_s=60.0)
        await gateway.summarize_streams()
        await asyncio.sleep(2.0)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and append the results to bench/RESULTS.md."""
    parser = common.parser("bench_wearables", __doc__)
    parser.add_argument("--window", type=float, default=240.0, help="steady window (s)")
    parser.add_argument("--patients", type=int, default=5, help="a strap and a CGM each")
    args = parser.parse_args(argv)
    if args.quick:
        args.window = 70.0
    load_start = common.load_1min()
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(Path(tmp) / "mosquitto")
        broker.start()
        try:
            result = asyncio.run(_run(args.window, args.patients, Path(tmp) / "hub", broker))
        finally:
            broker.stop()
    sizes = ", ".join(
        f"{k} {v:.0f} B"
        for k, v in sorted(result["bytes_per_reading"].items())  # type: ignore[attr-defined]
    )
    lines = [
        f"\n## wearables: one hub, {2 * args.patients} wearables + 2 meters + 2 cuffs "
        f"({common.stamp()})\n",
        f"Machine: {common.machine(load_start)}. Devices and hub in one process on the fast "
        "virtual air, real Mosquitto, a receipting MQTT peer.\n",
        "| measure | value |",
        "|---|---|",
        f"| steady window | {result['wall_s']:.0f} s |",
        f"| CPU (devices + hub, one process) | {result['cpu_pct']:.1f} % of one core |",
        f"| peak RSS | {result['rss_mib']:.0f} MiB |",
        f"| MQTT reading messages per minute | {result['messages_per_min']:.1f} |",
        f"| readings published in the window | {result['window_readings']} |",
        f"| payload bytes per reading (batched JSON) | {sizes} |",
        f"| bytes per day per patient (strap + CGM at real cadence, share of meters and cuffs) "
        f"| {result['bytes_per_day_patient'] / 1024:.0f} KiB |",
        f"| raw samples forwarded (whole run) | {result['samples']} in "
        f"{result['sample_messages']} messages |",
        f"| payload bytes per raw sample (hv.samples/1, a minute per batch) "
        f"| {result['bytes_per_sample']:.1f} B |",
        f"| bytes per day per patient the raw samples add (strap at 1 Hz) "
        f"| {result['sample_bytes_per_day_patient'] / 1024:.0f} KiB |",
    ]
    common.write("\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
