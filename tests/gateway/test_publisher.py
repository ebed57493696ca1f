"""MQTT 5 publishing on the real Mosquitto: receipts retire, PUBACK alone never does."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.sessions.events import DeviceCursor
from devices.wire import (
    STATUS_ONLINE,
    Heartbeat,
    Receipt,
    encode_receipt,
    heartbeat_topic,
    receipts_topic,
    status_topic,
)
from gateway.delivery import batches, publish_loop, receipt_loop
from gateway.errors import PublishError
from gateway.outbox import Backoff, Outbox
from gateway.publisher import HEARTBEAT_EXPIRY_S, MqttConfig, Publisher
from tests.gateway.factories import glucose, meter
from tests.gateway.ingest_peer import IngestPeer
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.servers import MosquittoServer


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def gateway_id() -> str:
    return f"gw-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=0.5, max_s=2))
    yield box
    box.close()


@pytest.fixture
def peer(mosquitto: MosquittoServer) -> Iterator[IngestPeer]:
    p = IngestPeer(mosquitto.host, mosquitto.port)
    yield p
    p.close()


async def wait_until(predicate: object, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls SQLite
            await asyncio.sleep(0.02)


def retained(host: str, port: int, topic: str) -> bytes | None:
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        got.append(bytes(m.payload))
        done.set()

    client.on_message = on_message
    client.connect(host, port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    done.wait(3)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None


@pytest.fixture
async def running(
    mosquitto: MosquittoServer, outbox: Outbox, gateway_id: str
) -> AsyncIterator[Publisher]:
    publisher = Publisher(
        gateway_id, MqttConfig(mosquitto.host, mosquitto.port, puback_timeout_s=5)
    )
    async with publisher:
        await publisher.wait_connected(10)
        wake = asyncio.Event()
        tasks = [
            asyncio.create_task(
                publish_loop(outbox, publisher, utcnow, wake, max_batch_bytes=20_000, poll_s=0.05)
            ),
            asyncio.create_task(receipt_loop(outbox, publisher, utcnow)),
        ]
        try:
            yield publisher
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_readings_are_retired_only_by_receipts(
    peer: IngestPeer,
    outbox: Outbox,
    running: Publisher,
    gateway_id: str,
    mosquitto: MosquittoServer,
) -> None:
    dev = meter()
    readings = [glucose(s, dev, gateway_id) for s in range(1, 201)]
    outbox.store(dev.id, readings, DeviceCursor(200, readings[-1].device_time), [], utcnow())
    await wait_until(lambda: outbox.stats(utcnow()).pending == 0)
    assert set(peer.received) == {r.reading_id for r in readings}
    assert all(outbox.state_of(r.reading_id) == "retired" for r in readings)
    assert peer.batches > 1  # 200 readings do not fit one 20 kB batch
    assert retained(mosquitto.host, mosquitto.port, status_topic(gateway_id)) == b"online"


async def test_without_receipts_readings_stay_and_are_resent(
    mosquitto: MosquittoServer, outbox: Outbox, running: Publisher, gateway_id: str
) -> None:
    silent = IngestPeer(mosquitto.host, mosquitto.port, send_receipts=False)
    try:
        dev = meter("MTR-SILENT")
        readings = [glucose(s, dev, gateway_id) for s in range(1, 4)]
        outbox.store(dev.id, readings, None, [], utcnow())
        await wait_until(lambda: min(silent.received[r.reading_id] for r in readings) >= 2)
        assert outbox.stats(utcnow()).pending == 3  # PUBACKed twice over, still pending
    finally:
        silent.close()


async def test_no_matching_subscriber_is_not_delivery(
    mosquitto: MosquittoServer, gateway_id: str
) -> None:
    # Nobody subscribes to this gateway's readings: MQTT 5 PUBACK 0x10, which we refuse.
    publisher = Publisher(f"lonely-{gateway_id}", MqttConfig(mosquitto.host, mosquitto.port))
    async with publisher:
        await publisher.wait_connected(10)
        with pytest.raises(PublishError, match="0x10"):
            await publisher.publish_batch([glucose(1, gateway_id=f"lonely-{gateway_id}")])


async def _publishing(
    publisher: Publisher, outbox: Outbox, *, no_subscriber_retry_s: float
) -> list[asyncio.Task[None]]:
    await publisher.wait_connected(10)
    return [
        asyncio.create_task(
            publish_loop(
                outbox,
                publisher,
                utcnow,
                publisher.wake or asyncio.Event(),
                poll_s=0.05,
                no_subscriber_retry_s=no_subscriber_retry_s,
            )
        ),
        asyncio.create_task(receipt_loop(outbox, publisher, utcnow)),
    ]


def _attempts(outbox: Outbox, reading_id: str) -> int:
    with outbox._lock:
        row = outbox._conn.execute(
            "SELECT attempts FROM readings WHERE reading_id = ?", (reading_id,)
        ).fetchone()
    return int(row[0])


async def test_no_subscriber_refusals_are_retried_soon_not_backed_off(
    mosquitto: MosquittoServer, tmp_path: Path, gateway_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # After a broker restart the hub may reconnect before ingest resubscribes: PUBACK 0x10.
    # Those refusals must not feed the resend backoff (here an hour), or the backlog waits.
    caplog.set_level(logging.INFO, "gateway.delivery")
    outbox = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=3600, max_s=3600))
    publisher = Publisher(gateway_id, MqttConfig(mosquitto.host, mosquitto.port))
    dev = meter("MTR-0x10")
    readings = [glucose(s, dev, gateway_id) for s in range(1, 4)]
    outbox.store(dev.id, readings, None, [], utcnow())
    async with publisher:
        tasks = await _publishing(publisher, outbox, no_subscriber_retry_s=0.3)
        try:
            await wait_until(lambda: "no ingest subscribed yet (0x10)" in caplog.text)
            assert _attempts(outbox, readings[0].reading_id) == 0
            peer = IngestPeer(mosquitto.host, mosquitto.port)  # subscribes, does not announce
            try:
                await wait_until(lambda: outbox.stats(utcnow()).pending == 0)
            finally:
                peer.close()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    outbox.close()


async def test_ingest_announcing_itself_makes_the_hub_resend_at_once(
    mosquitto: MosquittoServer, tmp_path: Path, gateway_id: str
) -> None:
    # Readings already attempted (PUBACKed, no receipt: ingest lost them) wait an hour by the
    # backoff, and 0x10 retries are an hour too: only ingest's `online` can bring them now.
    outbox = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=3600, max_s=3600))
    publisher = Publisher(
        gateway_id, MqttConfig(mosquitto.host, mosquitto.port), wake=asyncio.Event()
    )
    dev = meter("MTR-ANNOUNCE")
    readings = [glucose(s, dev, gateway_id) for s in range(1, 4)]
    outbox.store(dev.id, readings, None, [], utcnow())
    async with publisher:
        tasks = await _publishing(publisher, outbox, no_subscriber_retry_s=3600)
        try:
            silent = IngestPeer(mosquitto.host, mosquitto.port, send_receipts=False)
            try:
                await wait_until(lambda: silent.received[readings[0].reading_id] >= 1)
            finally:
                silent.close()
            assert _attempts(outbox, readings[0].reading_id) == 1
            announcements = publisher.ingest_announcements
            peer = IngestPeer(mosquitto.host, mosquitto.port, announce=True)
            try:
                await wait_until(lambda: outbox.stats(utcnow()).pending == 0)
                assert publisher.ingest_announcements > announcements
            finally:
                peer.close()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    outbox.close()


async def test_the_retained_online_met_on_subscribing_is_not_an_announcement(
    mosquitto: MosquittoServer, tmp_path: Path, gateway_id: str
) -> None:
    # Ingest is up before the hub connects: its retained `online` reaches the hub with every
    # subscription, after the connection already made the backlog due. Counted, it sent the
    # backlog a second time whenever it arrived after the first pass began.
    outbox = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=3600, max_s=3600))
    publisher = Publisher(
        gateway_id, MqttConfig(mosquitto.host, mosquitto.port), wake=asyncio.Event()
    )
    dev = meter("MTR-RETAINED")
    readings = [glucose(s, dev, gateway_id) for s in range(1, 4)]
    outbox.store(dev.id, readings, None, [], utcnow())
    peer = IngestPeer(mosquitto.host, mosquitto.port, send_receipts=False, announce=True)
    try:
        async with publisher:
            tasks = await _publishing(publisher, outbox, no_subscriber_retry_s=3600)
            try:
                # The hub subscribed before it published: the retained status is behind it.
                await wait_until(lambda: all(peer.received[r.reading_id] for r in readings))
                live = peer.client.publish(peer.status, STATUS_ONLINE, qos=1, retain=True)
                live.wait_for_publish(5)  # forwarded live: news, the backlog goes out again
                await wait_until(lambda: all(peer.received[r.reading_id] == 2 for r in readings))
                assert publisher.ingest_announcements == 1
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        peer.close()
        outbox.close()


async def test_a_backlog_goes_out_once_when_the_broker_answers_mid_pass(
    mosquitto: MosquittoServer, tmp_path: Path, gateway_id: str
) -> None:
    # A hub starts with a backlog and its publish loop runs before the broker answers; the
    # connection completes while the first pass reads the outbox. That pass must not publish
    # on its stale view and then resend the whole backlog for the connection.
    outbox = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=3600, max_s=3600))
    dev = meter("MTR-MIDPASS")
    readings = [glucose(s, dev, gateway_id) for s in range(1, 4)]
    outbox.store(dev.id, readings, None, [], utcnow())
    peer = IngestPeer(mosquitto.host, mosquitto.port, send_receipts=False)
    publisher = Publisher(
        gateway_id, MqttConfig(mosquitto.host, mosquitto.port), wake=asyncio.Event()
    )
    answered = threading.Event()
    on_connect = publisher._client.on_connect

    def connected_then_tell(*args: object) -> None:
        on_connect(*args)  # type: ignore[misc]  # queues the publisher's own bookkeeping
        answered.set()

    publisher._client.on_connect = connected_then_tell
    passes = 0

    def now() -> datetime:
        nonlocal passes
        passes += 1
        if passes == 1:  # the first pass's outbox read: the broker answers meanwhile
            assert answered.wait(10)
        return utcnow()

    try:
        async with publisher:
            task = asyncio.create_task(
                publish_loop(outbox, publisher, now, publisher.wake or asyncio.Event(),
                             poll_s=0.05, no_subscriber_retry_s=3600)
            )  # fmt: skip
            try:
                await wait_until(lambda: all(peer.received[r.reading_id] for r in readings))
                settled = passes
                await wait_until(lambda: passes >= settled + 6)  # more passes, nothing due
                assert [peer.received[r.reading_id] for r in readings] == [1, 1, 1]
                assert [_attempts(outbox, r.reading_id) for r in readings] == [1, 1, 1]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        peer.close()
        outbox.close()


async def test_not_authorized_puback_is_not_delivery(tmp_path: Path) -> None:
    acl = "user gw-a\ntopic readwrite hv/v1/gw/gw-a/#\nuser gw-b\ntopic readwrite hv/v1/gw/gw-b/#\n"
    server = MosquittoServer(tmp_path / "mq", users={"gw-a": "secret-a", "gw-b": "pw-b"}, acl=acl)
    server.start()
    try:
        config = MqttConfig(server.host, server.port, username="gw-a", password="secret-a")
        # gw-a claims to be gw-b: the ACL refuses the publish with 0x87.
        publisher = Publisher("gw-b", config)
        async with publisher:
            await publisher.wait_connected(10)
            with pytest.raises(PublishError, match="0x87"):
                await publisher.publish_batch([glucose(1, gateway_id="gw-b")])
        wrong = Publisher(
            "gw-a", MqttConfig(server.host, server.port, username="gw-a", password="nope")
        )
        async with wrong:
            await asyncio.sleep(1.0)
            assert not wrong.connected.is_set()
            assert wrong.last_error is not None and "refused" in wrong.last_error
    finally:
        server.stop()


async def test_receipts_sent_while_offline_are_applied_on_return(
    mosquitto: MosquittoServer, outbox: Outbox, gateway_id: str
) -> None:
    dev = meter("MTR-OFFLINE")
    reading = glucose(1, dev, gateway_id)
    outbox.store(dev.id, [reading], None, [], utcnow())
    config = MqttConfig(mosquitto.host, mosquitto.port)
    async with Publisher(gateway_id, config) as first:
        await first.wait_connected(10)  # creates the persistent session and subscription
    sender = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect(mosquitto.host, mosquitto.port)
    sender.loop_start()
    info = sender.publish(
        receipts_topic(gateway_id), encode_receipt(Receipt((reading.reading_id,))), qos=1
    )
    info.wait_for_publish(5)
    sender.disconnect()
    sender.loop_stop()
    async with Publisher(gateway_id, config) as second:
        retired = await asyncio.wait_for(second.receipts.get(), 10)
        assert retired.receipt.committed == (reading.reading_id,)
        outbox.retire(retired.receipt.committed, (), utcnow())
        second.ack(retired.mid)
    assert outbox.state_of(reading.reading_id) == "retired"
    assert retained(mosquitto.host, mosquitto.port, status_topic(gateway_id)) == b"offline"


def test_batches_respect_the_byte_limit() -> None:
    readings = [glucose(s) for s in range(50)]
    parts = list(batches(readings, max_bytes=5_000, max_count=1000))
    assert [r for part in parts for r in part] == readings
    assert len(parts) > 1 and all(len(p) >= 1 for p in parts)


async def test_a_heartbeat_expires_at_the_broker_after_a_minute(
    mosquitto: MosquittoServer, gateway_id: str
) -> None:
    # A heartbeat queued for an offline ingest must not be taken, minutes later, as the hub
    # being alive or as its clock offset: it carries an MQTT 5 Message Expiry Interval.
    got: list[mqtt.MQTTMessage] = []
    listener = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = lambda c, u, m: got.append(m)
    listener.connect(mosquitto.host, mosquitto.port)
    listener.subscribe(heartbeat_topic(gateway_id), qos=1)
    listener.loop_start()
    try:
        publisher = Publisher(gateway_id, MqttConfig(mosquitto.host, mosquitto.port))
        async with publisher:
            await publisher.wait_connected(10)
            await publisher.publish_heartbeat(Heartbeat(gateway_id, utcnow(), ()))
        await wait_until(lambda: got, 10)
    finally:
        listener.disconnect()
        listener.loop_stop()
    expiry_s = getattr(got[0].properties, "MessageExpiryInterval", None)
    assert expiry_s is not None and 0 < expiry_s <= HEARTBEAT_EXPIRY_S == 60


async def test_a_half_open_link_is_noticed_within_one_and_a_half_keepalives(
    mosquitto: MosquittoServer, gateway_id: str
) -> None:
    # The broker drops a silent client after 1.5 x keepalive; the hub must notice a dead link
    # as soon (paho alone pings after one idle keepalive and waits another: up to 2 x). Adds
    # about 12 s to the default suite.
    keepalive_s = 5
    with FaultProxy(mosquitto.port) as proxy:
        config = MqttConfig(mosquitto.host, proxy.port, keepalive_s=keepalive_s)
        publisher = Publisher(gateway_id, config)
        async with publisher:
            await publisher.wait_connected(10)
            await asyncio.sleep(keepalive_s)  # idle: its pings keep the link up
            assert (publisher.connections, proxy.connections) == (1, 1)
            # Traffic both ways just now (the worst case for paho's own schedule: a PUBACK,
            # "no matching subscribers"), then the far end vanishes: nothing is closed, nothing
            # arrives; a new connection works.
            with pytest.raises(PublishError, match="0x10"):
                await publisher.publish_heartbeat(Heartbeat(gateway_id, utcnow(), ()))
            t0 = time.monotonic()
            proxy.set_mode(Mode.HALF_OPEN)
            await wait_until(lambda: not publisher.connected.is_set(), 3 * keepalive_s)
            noticed_s = time.monotonic() - t0
            assert noticed_s <= 1.5 * keepalive_s, f"dead link noticed after {noticed_s:.1f} s"
            await publisher.wait_connected(3 * keepalive_s)  # through a new connection, once
            assert (publisher.connections, proxy.connections) == (2, 2)
