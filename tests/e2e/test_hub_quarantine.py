"""Packets the hub quarantined reach the server's quarantine (hub -> Mosquitto -> real ingest)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from devices.sessions.events import DeviceCursor, QuarantinedPacket
from gateway.delivery import publish_loop, receipt_loop
from gateway.outbox import Outbox
from gateway.publisher import MqttConfig, Publisher
from ingest import schema
from ingest.store import make_engine
from tests.gateway.factories import glucose, meter
from tests.ingest.support import IngestProcess, end_session, ingest_env
from tests.support.record import enrol_readings
from tests.support.servers import MosquittoServer


def _now() -> datetime:
    return datetime.now(UTC)


async def test_hub_quarantine_is_forwarded_to_the_servers_quarantine_once(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway_id = f"gw-{tag}"
    url = f"sqlite:///{tmp_path / 'hv.db'}"
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(url, mosquitto.port, f"g{tag}", f"ingest-{tag}")
    )
    ingest.start()
    outbox = Outbox(tmp_path / "gw.sqlite")
    dev = meter()
    bad = [
        QuarantinedPacket("2a18", b"\x17\x02\x00\xea\x07", "GlucoseMeasurement: truncated", _now()),
        QuarantinedPacket("2a34", b"\x02\x09", "GlucoseMeasurementContext: truncated", _now()),
    ]
    reading = glucose(1, dev, gateway_id)
    enrol_readings(url, [reading])
    outbox.store(dev.id, [reading], DeviceCursor(1, reading.device_time), bad, _now())
    publisher = Publisher(gateway_id, MqttConfig(mosquitto.host, mosquitto.port))
    engine = make_engine(url)
    try:
        async with publisher:
            await publisher.wait_connected(10)
            loops = [
                asyncio.create_task(
                    publish_loop(
                        outbox, publisher, _now, asyncio.Event(), poll_s=0.05, packet_resend_s=1
                    )
                ),
                asyncio.create_task(receipt_loop(outbox, publisher, _now)),
            ]
            try:
                async with asyncio.timeout(30):
                    while outbox.unforwarded(_now(), 10, resend_after_s=0) or (  # noqa: ASYNC110
                        outbox.stats(_now()).pending
                    ):
                        await asyncio.sleep(0.05)
                await asyncio.sleep(1.5)  # a resend would happen now if the receipt were lost
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(schema.quarantine).order_by(schema.quarantine.c.id)).all()
        assert [(r.field, r.gateway_id, r.topic) for r in rows] == [
            ("hub:2a18", gateway_id, f"hv/v1/gw/{gateway_id}/quarantine"),
            ("hub:2a34", gateway_id, f"hv/v1/gw/{gateway_id}/quarantine"),
        ]
        docs = [json.loads(r.payload) for r in rows]
        assert [d["raw_hex"] for d in docs] == [p.raw.hex() for p in bad]
        assert [d["device_id"] for d in docs] == [dev.id, dev.id]
        assert rows[0].reason == "hub quarantine: GlucoseMeasurement: truncated"
        assert outbox.quarantined(dev.id) == bad  # the hub keeps its copy until pruned
    finally:
        engine.dispose()
        outbox.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")
