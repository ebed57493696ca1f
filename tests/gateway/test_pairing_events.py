"""Pairings and unpairings reach the server's device registry and audit trail, end to end:
simulated meter and household cuff -> the hub (its registry writes each pairing event in the
change's own transaction) -> Mosquitto -> the real ingest (a subprocess) -> PostgreSQL. Events
made while the hub had no broker survive a hub restart and arrive in order; ingest's receipt
retires them; a hub that names a patient it does not serve is quarantined and receipted, and
never reaches the registry."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from careteam import audit_store, device_store
from devices.wire import (
    PairingEvent,
    decode_receipt,
    encode_pairings,
    pairings_topic,
    receipts_topic,
)
from firmware_sims.air import VirtualAir
from gateway.delivery import publish_loop, receipt_loop
from gateway.publisher import MqttConfig, Publisher
from ingest import schema
from tests.gateway.sims import PASSKEY, Hub, hub, make_cuff, make_meter, utcnow
from tests.ingest.support import IngestProcess, end_session, ingest_env
from tests.support.record import enrol
from tests.support.servers import MosquittoServer

WITHIN_S = 60  # a hang guard, not a speed claim


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def _delivered(h: Hub, mosquitto: MosquittoServer) -> None:
    """Run the hub's publish and receipt loops until no pairing event waits for a receipt."""
    async with Publisher("gw-test", MqttConfig(mosquitto.host, mosquitto.port)) as publisher:
        await publisher.wait_connected(10)
        loops = [
            asyncio.create_task(
                publish_loop(h.outbox, publisher, utcnow, h.gateway.wake, poll_s=0.1)
            ),
            asyncio.create_task(receipt_loop(h.outbox, publisher, utcnow)),
        ]
        try:
            async with asyncio.timeout(WITHIN_S):
                while h.outbox.pending_pairings():  # noqa: ASYNC110 - polls SQLite
                    await asyncio.sleep(0.1)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)


def _device_audit(engine: sa.Engine) -> list[tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        assert audit_store.verify(conn).ok
        return [
            (e.action, e.patient_id, e.entity_id)
            for e in audit_store.entries(conn)
            if e.action.startswith("device.")
        ]


class _ForeignHub:
    """An enrolled hub's MQTT side that reports a pairing for a patient it does not serve."""

    def __init__(self, port: int, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.receipted: list[str] = []
        self.got = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=gateway_id, protocol=mqtt.MQTTv5
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(receipts_topic(gateway_id), qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.receipted.extend(decode_receipt(msg.payload).pairings)
        self.got.set()

    def report(self, event: PairingEvent, **broken: object) -> None:
        """Publish one event; `broken` overrides fields of its JSON (a bad event)."""
        body = json.loads(encode_pairings(self.gateway_id, [event]))
        body["events"][0].update(broken)
        payload = json.dumps(body).encode()
        self.got.clear()
        self.client.publish(pairings_topic(self.gateway_id), payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_pairings_and_unpairings_reach_the_registry_and_the_audit_trail(
    air: VirtualAir, mosquitto: MosquittoServer, pg_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    client_id = f"ingest-pair-{tag}"
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(pg_url, mosquitto.port, f"g{tag}", client_id)
    )
    await asyncio.to_thread(ingest.start)
    engine = sa.create_engine(pg_url)
    await asyncio.to_thread(
        enrol, engine, [("gw-test", "patient-1"), ("gw-test", "patient-8"), ("gw-x", "patient-7")]
    )
    meter = make_meter(air, records=3)
    cuff = make_cuff(air, records=2)
    await meter.power_on()
    await cuff.power_on()
    foreign = _ForeignHub(mosquitto.port, "gw-x")
    try:
        # Paired while the hub has no broker at all; then the hub stops.
        async with hub(air, tmp_path) as h:
            await h.gateway.discover(0.4)
            assert (await h.gateway.pair(meter.address, "patient-1", passkey=PASSKEY)).stored
            shared = await h.gateway.pair(
                cuff.address,
                "patient-1",
                passkey=PASSKEY,
                user_patients={1: "patient-1", 2: "patient-8"},
            )
            assert shared.stored == 2
            assert h.outbox.pending_pairings() == 2
        # Restarted: the events kept on disk go out and are receipted.
        async with hub(air, tmp_path) as h:
            await _delivered(h, mosquitto)
            meter_id, cuff_id = (p.device_id for p in h.registry.all())
            with engine.connect() as conn:
                mine = device_store.devices_of_patient(conn, "patient-1")
                theirs = device_store.devices_of_patient(conn, "patient-8")
            assert [(d.device_id, d.active) for d in mine] == [(meter_id, True), (cuff_id, True)]
            assert [d.patients for d in theirs] == [(("patient-1", 1), ("patient-8", 2))]
            assert mine[0].serial == "GM0000000001" and mine[0].kind == "glucose"
            assert _device_audit(engine) == [
                ("device.pair", "patient-1", meter_id),
                ("device.pair", "patient-1", cuff_id),
                ("device.pair", "patient-8", cuff_id),
            ]
            # Unpaired on the hub's page or CLI: the registry and the trail follow.
            await h.gateway.unpair(meter_id, scan_s=0.4)
            await _delivered(h, mosquitto)
        with engine.connect() as conn:
            (gone,) = [d for d in device_store.devices_of_gateway(conn, "gw-test") if not d.active]
        assert gone.device_id == meter_id and gone.unpaired_at is not None
        assert _device_audit(engine)[3:] == [("device.unpair", "patient-1", meter_id)]

        # Another enrolled hub names patient-1, whom it does not serve.
        now = datetime.now(UTC)
        forged = PairingEvent(
            f"forged-{tag}", "pair", "dev-forged", "glucose", "patient-1", (),
            None, None, None, None, now, now,
        )  # fmt: skip
        foreign.report(forged)
        assert await asyncio.to_thread(foreign.got.wait, WITHIN_S)
        assert foreign.receipted == [forged.event_id]  # the hub stops resending it
        with engine.connect() as conn:
            assert [d.device_id for d in device_store.devices_of_patient(conn, "patient-1")] == [
                meter_id, cuff_id,
            ]  # fmt: skip
            kept = conn.execute(
                sa.select(schema.quarantine.c.field, schema.quarantine.c.reason).where(
                    schema.quarantine.c.gateway_id == "gw-x"
                )
            ).all()
        assert kept == [("patient_id", "not_enrolled")]
        # A malformed event: quarantined alone, naming its field, and receipted by its id.
        bad = PairingEvent(
            f"bad-{tag}", "pair", "dev-bad", "glucose", "patient-7", (),
            None, None, None, None, now, now,
        )  # fmt: skip
        foreign.report(bad, action="forget")
        assert await asyncio.to_thread(foreign.got.wait, WITHIN_S)
        assert foreign.receipted == [forged.event_id, bad.event_id]
        with engine.connect() as conn:
            kept = conn.execute(
                sa.select(schema.quarantine.c.field, schema.quarantine.c.reason)
                .where(schema.quarantine.c.gateway_id == "gw-x")
                .order_by(schema.quarantine.c.id)
            ).all()
            assert device_store.devices_of_gateway(conn, "gw-x") == []
        assert kept[1][0] == "events[0].action" and "pair" in kept[1][1]
        assert len(_device_audit(engine)) == 4
    finally:
        foreign.close()
        await asyncio.to_thread(ingest.stop)
        end_session(mosquitto.port, client_id)
        engine.dispose()
