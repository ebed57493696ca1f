"""SIGKILL the gateway process around the outbox and restart it: nothing lost, nothing
published under another id, the cursor never ahead of what is stored.

The gateway runs as a real subprocess (`python -m gateway`) joining the test's virtual air over
HCI/TCP; a failpoint setting makes it SIGKILL itself at the named point. The test plays ingest
on the real Mosquitto (`IngestPeer`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices.reading import Kind, device_id_for, reading_id_for
from devices.sessions import DeviceCursor
from devices.wire import status_topic
from firmware_sims.air import VirtualAir
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.hci_bridge import open_hci_endpoint
from gateway.outbox import Outbox
from tests.gateway.ingest_peer import IngestPeer
from tests.gateway.sims import add_records, make_meter, meter_ids, utcnow
from tests.gateway.test_publisher import retained
from tests.support.servers import MosquittoServer

ROOT = Path(__file__).parents[2]
RECORDS = 300
HOMEVITALS = str(Path(sys.executable).parent / "homevitals")


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


def write_settings(path: Path, gateway_id: str, spec: str, mosquitto: MosquittoServer) -> Path:
    settings = path / "gateway.toml"
    settings.write_text(
        f'gateway_id = "{gateway_id}"\n'
        f'data_dir = "{path / "data"}"\n'
        f'mqtt_host = "{mosquitto.host}"\nmqtt_port = {mosquitto.port}\n'
        "mqtt_keepalive_s = 2\n"
        f'ble_transport = "{spec}"\n'
        "pace_s = 0.0\nscan_s = 0.5\nmeter_sync_interval_s = 0.5\nscan_idle_s = 0.2\n"
        "silence_timeout_s = 1.0\n"
        "operation_timeout_s = 5.0\nresend_first_s = 1.0\nresend_max_s = 2.0\n"
        "max_batch_bytes = 30000\npage_enabled = false\n"
    )
    return settings


async def start(settings: Path, failpoint: str | None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_GATEWAY_")}
    if failpoint:
        env["HV_GATEWAY_FAILPOINT"] = failpoint
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--settings", str(settings), "--log-level", "WARNING",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_for(predicate: object, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls SQLite
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("failpoint", ["before_commit", "after_commit", "after_publish"])
async def test_sigkill_around_the_outbox_loses_nothing(
    failpoint: str, air: VirtualAir, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    meter = make_meter(air, model="contour-like", serial=f"CR{uuid.uuid4().hex[:10]}")
    await meter.power_on()
    endpoint = await open_hci_endpoint(air)
    gateway_id = f"gw-crash-{uuid.uuid4().hex[:8]}"
    settings = write_settings(tmp_path, gateway_id, endpoint.spec, mosquitto)
    peer = IngestPeer(mosquitto.host, mosquitto.port)
    process: asyncio.subprocess.Process | None = None
    try:
        pair = await asyncio.create_subprocess_exec(
            HOMEVITALS, "gateway", "pair", meter.address, "--patient", "patient-1",
            "--settings", str(settings), "--scan-s", "1",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(pair.communicate(), 60)
        assert pair.returncode == 0, (out + err).decode()
        assert out.decode().startswith("nothing_new"), out.decode()
        add_records(meter, RECORDS)
        expected = meter_ids(meter)

        process = await start(settings, failpoint)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == -signal.SIGKILL, err.decode()[-2000:]

        box = Outbox(tmp_path / "data" / "gateway.sqlite")
        stored = set(box.reading_ids())
        device_id = meter_device_id(meter)
        cursor = box.cursor(device_id)
        if failpoint == "before_commit":
            assert stored == set() and cursor is None and not peer.received
        else:
            assert stored == expected
            assert cursor is not None and cursor_reading_id(device_id, cursor) in stored
            assert box.stats(utcnow()).pending == RECORDS  # nothing retired yet
        if failpoint == "after_commit":
            assert not peer.received
        if failpoint == "after_publish":
            await wait_for(lambda: len(peer.received) > 0, 10)  # the broker forwards it
            assert len(peer.received) < RECORDS
        if failpoint != "before_commit":
            # the broker published the gateway's last will
            await wait_for(
                lambda: (
                    retained(mosquitto.host, mosquitto.port, status_topic(gateway_id)) == b"offline"
                ),
                15,
            )

        process = await start(settings, None)
        await wait_for(
            lambda: box.stats(utcnow()).pending == 0 and len(box.reading_ids()) == RECORDS, 60
        )
        await wait_for(lambda: set(peer.received) == expected, 20)
        assert set(peer.received) <= expected  # never published under another id
        final = box.cursor(device_id)
        assert final is not None and final.last_sequence == max(
            r.sequence_number for r in meter.racp.records
        )
        box.close()
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.communicate(), 30)
        peer.close()
        await endpoint.close()


def meter_device_id(meter: GlucoseMeter) -> str:
    ident = meter.identity
    return device_id_for(manufacturer=ident.manufacturer, model=ident.model, serial=ident.serial)


def cursor_reading_id(device_id: str, cursor: DeviceCursor) -> str:
    return reading_id_for(
        device_id=device_id,
        kind=Kind.GLUCOSE,
        sequence=cursor.last_sequence,
        device_time=cursor.last_device_time,
    )
