"""Smoke tests: each server fixture is the real thing, not a stand-in."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.servers import MosquittoServer, VictoriaMetricsServer


def test_mosquitto_mqtt5_publish_and_receive(mosquitto: MosquittoServer) -> None:
    topic = f"smoke/{uuid.uuid4().hex}"
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        arrived.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = 60
        # The subscription may not be active yet: publish until it arrives (bounded).
        for _ in range(50):
            pub.publish(topic, b"hello", qos=1, properties=props).wait_for_publish(5)
            if arrived.wait(0.1):
                break
    finally:
        pub.loop_stop()
        sub.loop_stop()
        pub.disconnect()
        sub.disconnect()
    assert got and got[0] == b"hello"


def test_postgres_create_insert_select(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    table = sa.Table(
        "smoke",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text, nullable=False),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "note": "one"}, {"id": 2, "note": "two"}])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.note).order_by(table.c.id)).scalars().all()
        version = conn.execute(sa.text("select version()")).scalar_one()
    engine.dispose()
    assert rows == ["one", "two"]
    assert str(version).startswith("PostgreSQL 15")


def test_victoria_metrics_accepts_influx_v2_write(victoria_metrics: VictoriaMetricsServer) -> None:
    series = f"smoke_{uuid.uuid4().hex[:8]}"
    when = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    with InfluxDBClient(url=victoria_metrics.url, token="unused", org="homevitals") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="homevitals",
            record=f"{series},patient=p1 value=5.5 {int(when.timestamp())}",
            write_precision="s",
        )
    victoria_metrics.force_flush()
    query = f'{victoria_metrics.url}/api/v1/export?match[]={{__name__="{series}_value"}}'
    with urllib.request.urlopen(query, timeout=5) as resp:
        lines = [json.loads(line) for line in resp.read().decode().splitlines() if line]
    assert len(lines) == 1
    assert lines[0]["metric"]["patient"] == "p1"
    assert lines[0]["values"] == [5.5]
    assert lines[0]["timestamps"] == [int(when.timestamp() * 1000)]
