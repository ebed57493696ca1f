"""A stand-in for ingest on the real broker: decodes batches, remembers them, sends receipts.

It is a real MQTT 5 peer (paho, QoS 1, persistent session) speaking the `devices.wire`
contract, so gateway tests exercise the broker path end to end before ingest exists in-tree.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.wire import (
    STATUS_ONLINE,
    Receipt,
    decode_batch,
    encode_receipt,
    gateway_id_from_topic,
    ingest_status_topic,
    receipts_topic,
)


class IngestPeer:
    def __init__(
        self, host: str, port: int, *, send_receipts: bool = True, announce: bool = False
    ) -> None:
        self.send_receipts = send_receipts
        self.received: Counter[str] = Counter()
        self.batches = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"ingest-peer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        # No session kept after close: a later test must see "no matching subscribers".
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        self.client.connect(host, port, clean_start=True, properties=props)
        self.client.loop_start()
        self.client.subscribe("hv/v1/gw/+/readings", qos=1)
        assert self.subscribed.wait(10)
        if announce:  # as ingest does once subscribed (retained; cleared on close)
            self.status = ingest_status_topic(self.client._client_id.decode())
            self.client.publish(self.status, STATUS_ONLINE, qos=1, retain=True).wait_for_publish(5)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        gateway_id = gateway_id_from_topic(message.topic)
        batch = decode_batch(bytes(message.payload), topic_gateway_id=gateway_id)
        ids = [r.reading_id for r in batch.readings]
        with self.lock:
            self.batches += 1
            self.received.update(ids)
        if self.send_receipts:
            receipt = Receipt(tuple(ids), tuple(r.reading_id or "" for r in batch.rejected))
            client.publish(receipts_topic(gateway_id), encode_receipt(receipt), qos=1)

    def wait_for(self, count: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"ingest peer saw {len(self.received)} of {count} readings")

    def close(self) -> None:
        if hasattr(self, "status"):  # an empty retained message deletes the retained one
            self.client.publish(self.status, b"", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()
