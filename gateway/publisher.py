"""MQTT 5 publishing of reading batches, and the end-to-end receipts that retire them.

paho-mqtt 2.x runs its network loop in its own thread; this adapter bridges it to asyncio.

- Per-gateway credentials; TLS (server verification always on) when a CA is configured.
- Persistent session: `clean_start=False` and a Session Expiry Interval, so receipts ingest
  publishes while the hub is offline wait at the broker (docs/reliability.md).
- QoS 1 batches. A PUBACK whose reason code is not 0x00 Success is *not* delivery (finding 2:
  0x10 "no matching subscribers" means nobody will read it): `publish_batch` raises
  `PublishError` and the outbox keeps the readings. Even a success PUBACK retires nothing; only
  a receipt naming a reading does.
- Receipts are acknowledged manually (`manual_ack=True`), after the outbox has retired them.
- Retained status `online`, last will `offline` (retained), and `offline` on a clean stop.
- Reconnection waits are exponential with random jitter (`MqttConfig.reconnect`), so a fleet
  of hubs that lost the broker together does not come back in step.
- A dead link is noticed within 1.5 x the keepalive, as the broker notices it (see
  `PINGS_PER_KEEPALIVE`): a half-open connection does not hold the backlog for 2 x keepalive.
- Ingest announces itself the same way (`hv/v1/ingest/+/status`): each live `online` counts
  in `ingest_announcements` and sets `wake`, so the publish loop resends what is pending at once
  instead of waiting out its backoff (after a broker restart ingest may resubscribe after the
  hub reconnected). The retained one delivered on subscribing does not count: the connection
  it follows has already made everything due.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.errors import ReadingValidationError
from devices.reading import Reading
from devices.sample_wire import envelope_of, samples_topic
from devices.wire import (
    INGEST_STATUS_FILTER,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Heartbeat,
    HubPacket,
    PairingEvent,
    Receipt,
    decode_receipt,
    encode_batch,
    encode_heartbeat,
    encode_packets,
    encode_pairings,
    heartbeat_topic,
    is_ingest_status_topic,
    pairings_topic,
    quarantine_topic,
    readings_topic,
    receipts_topic,
    status_topic,
)
from gateway.errors import PublishError
from gateway.failpoints import AFTER_PUBLISH, Failpoints
from gateway.outbox import Backoff

log = logging.getLogger(__name__)

ONLINE: Final = STATUS_ONLINE
OFFLINE: Final = STATUS_OFFLINE
HEARTBEAT_EXPIRY_S: Final = 60
# paho pings after one idle keepalive and waits one more keepalive for the PINGRESP, so a link
# that died without closing (half-open: the far end vanished) was noticed up to 2 x keepalive
# later, while the broker drops the session at 1.5 x (MQTT 5 section 3.1.2.10). Once connected
# the hub pings after a third of the negotiated keepalive of silence and gives the PINGRESP a
# third: a dead link is noticed within 2/3 x keepalive plus paho's 1 s loop (under 1.5 x for a
# keepalive of 3 s or more), and an idle hub still talks to the broker well within its 1.5 x.
# The CONNECT carries the configured keepalive (restored at every disconnect). paho has no
# public setting for it (its `keepalive` setter refuses an open connection, and the value it
# pings by is the one it sends), hence its `_keepalive`; `tests/gateway/test_publisher.py::
# test_a_half_open_link_is_noticed_within_one_and_a_half_keepalives` fails if that changes.
PINGS_PER_KEEPALIVE: Final = 3


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """How to reach the broker as this gateway."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 86400
    puback_timeout_s: float = 15.0
    max_inflight: int = 20
    # Waits before reconnecting: 1 s doubling to 30 s, each +-20 % at random.
    reconnect: Backoff = field(default_factory=lambda: Backoff(first_s=1.0, max_s=30.0))


@dataclass(frozen=True, slots=True)
class ReceivedReceipt:
    """A receipt and the MQTT message id to acknowledge once it is applied."""

    receipt: Receipt
    mid: int


class Publisher:
    """The gateway's MQTT 5 client (see the module docstring). Use with `async with`."""

    def __init__(
        self,
        gateway_id: str,
        config: MqttConfig,
        *,
        failpoints: Failpoints | None = None,
        rng: random.Random | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self._rng = rng or random.Random()  # noqa: S311 - reconnect jitter, not cryptography
        self._reconnect_attempts = 0
        self.reconnect_waits_s: list[float] = []  # each wait chosen, in order (for operators)
        self.config = config
        self.failpoints = failpoints or Failpoints()
        self.wake = wake  # set on (re)connection and on ingest's `online`
        self.ingest_announcements = 0
        self.receipts: asyncio.Queue[ReceivedReceipt] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.connections = 0  # successful CONNACKs so far (the service resends on each)
        self.last_error: str | None = None
        self.bad_receipts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[ReasonCode]] = {}
        self._early: dict[int, ReasonCode] = {}
        self._ignore: set[int] = set()
        self._client = self._make_client()
        self._schedule_reconnect()

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.gateway_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls_ca is not None:
            client.tls_set(
                ca_certs=str(cfg.tls_ca),
                certfile=None if cfg.tls_cert is None else str(cfg.tls_cert),
                keyfile=None if cfg.tls_key is None else str(cfg.tls_key),
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            client.tls_insecure_set(False)
        client.will_set(status_topic(self.gateway_id), OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # ----------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Publisher:
        """Start connecting (in the background: the outbox fills while the broker is away)."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Publish `offline`, disconnect cleanly and stop the network thread."""
        if self.connected.is_set():
            info = self._client.publish(status_topic(self.gateway_id), OFFLINE, qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 5.0)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until the broker accepted the connection.

        Raises:
            TimeoutError: not connected within `timeout_s`.
        """
        async with asyncio.timeout(timeout_s):  # not wait_for: see gateway.cancelling
            await self.connected.wait()

    # ----------------------------------------------------------------------------- publishing

    async def publish_batch(self, readings: Sequence[Reading]) -> None:
        """Publish one batch at QoS 1 and wait for a *successful* PUBACK.

        Raises:
            PublishError: not connected, the broker answered with a reason code other than
                Success, or no PUBACK came within `puback_timeout_s`.
        """
        await self._publish(
            readings_topic(self.gateway_id), encode_batch(self.gateway_id, readings)
        )

    async def publish_packets(self, packets: Sequence[HubPacket]) -> None:
        """Forward quarantined packets at QoS 1 and wait for a successful PUBACK.

        Raises:
            PublishError: as `publish_batch`.
        """
        payload = encode_packets(self.gateway_id, packets)
        await self._publish(quarantine_topic(self.gateway_id), payload)

    async def publish_pairings(self, events: Sequence[PairingEvent]) -> None:
        """Publish pairing events (oldest first) at QoS 1 and wait for a successful PUBACK.

        Raises:
            PublishError: as `publish_batch`.
        """
        payload = encode_pairings(self.gateway_id, events)
        await self._publish(pairings_topic(self.gateway_id), payload)

    async def publish_samples(self, batch_jsons: Sequence[str]) -> None:
        """Forward raw-sample batches (serialised) in one envelope at QoS 1 and wait for a
        successful PUBACK (0x10: no ingest mirrors samples now).

        Raises:
            PublishError: as `publish_batch`.
        """
        await self._publish(
            samples_topic(self.gateway_id), envelope_of(self.gateway_id, batch_jsons)
        )

    async def publish_heartbeat(self, beat: Heartbeat) -> None:
        """Publish the hub's heartbeat at QoS 1 and wait for a successful PUBACK.

        It expires at the broker after `HEARTBEAT_EXPIRY_S` (MQTT 5 Message Expiry): a stale
        heartbeat would claim the hub alive when it was not, and skew its clock offset.

        Raises:
            PublishError: as `publish_batch`.
        """
        expiry = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        expiry.MessageExpiryInterval = HEARTBEAT_EXPIRY_S
        await self._publish(heartbeat_topic(self.gateway_id), encode_heartbeat(beat), expiry)

    async def _publish(
        self, topic: str, payload: bytes, properties: Properties | None = None
    ) -> None:
        if not self.connected.is_set():
            raise PublishError(f"not connected to the broker ({self.last_error or 'connecting'})")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ReasonCode] = loop.create_future()
        # Never hold our lock around paho calls: paho calls on_publish with its own lock held.
        info = self._client.publish(topic, payload, qos=1, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish failed locally: {mqtt.error_string(info.rc)}")
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._waiting[info.mid] = future
            else:
                future.set_result(early)
        try:
            async with asyncio.timeout(self.config.puback_timeout_s):  # see gateway.cancelling
                code = await future
        except TimeoutError:
            with self._lock:
                self._waiting.pop(info.mid, None)
            raise PublishError(f"no PUBACK within {self.config.puback_timeout_s}s") from None
        if code.value != 0:
            raise PublishError(
                f"broker answered {code.getName()} ({code.value:#04x})", code=code.value
            )

    def ack(self, mid: int) -> None:
        """Acknowledge a receipt message (call after its readings are retired)."""
        self._client.ack(mid, 1)

    def _schedule_reconnect(self) -> None:
        """Choose paho's next wait before reconnecting: exponential, jittered (paho's own
        schedule doubles from a fixed minimum, so hubs cut off together retry in step)."""
        wait_s = self.config.reconnect.delay_s(self._reconnect_attempts + 1, self._rng.random())
        self.reconnect_waits_s.append(wait_s)
        # paho annotates these as int, but its wait is float arithmetic on time.time().
        self._client.reconnect_delay_set(wait_s, wait_s)  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------- callbacks
    # These run on paho's network thread: hand everything to the event loop.

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._reconnect_attempts += 1
        self._schedule_reconnect()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_error = f"connection refused: {reason.getName()}"
            log.error("%s: broker refused the connection: %s", self.gateway_id, reason.getName())
            return
        self._reconnect_attempts = 0
        self._set_ping_interval(client, client.keepalive / PINGS_PER_KEEPALIVE)
        client.subscribe(receipts_topic(self.gateway_id), qos=1)
        client.subscribe(INGEST_STATUS_FILTER, qos=0)  # QoS 0: nothing to acknowledge
        status = client.publish(status_topic(self.gateway_id), ONLINE, qos=1, retain=True)
        # Its PUBACK is handled on this same thread, after this callback: no race.
        with self._lock:
            self._ignore.add(status.mid)
        self.last_error = None
        self._call(self._set_connected, True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._set_ping_interval(client, self.config.keepalive_s)  # what the next CONNECT says
        refused = (self.last_error or "").startswith("connection refused")
        if reason.is_failure and not refused:
            self.last_error = f"disconnected: {reason.getName()}"
            log.warning("%s: disconnected from broker: %s", self.gateway_id, reason.getName())
        if refused:
            self._reconnect_attempts += 1  # a refused CONNECT backs off like a failed one
        self._schedule_reconnect()
        self._call(self._set_connected, False)
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for future in waiting:
            self._call(_fail, future, PublishError("link to the broker lost before PUBACK"))

    @staticmethod
    def _set_ping_interval(client: mqtt.Client, interval_s: float) -> None:
        """Set the silence after which paho pings, and waits for the PINGRESP (on paho's
        thread, from its callbacks; see `PINGS_PER_KEEPALIVE`)."""
        if client.keepalive and hasattr(client, "_keepalive"):
            client._keepalive = interval_s  # type: ignore[assignment]  # paho: float arithmetic

    def _set_connected(self, up: bool) -> None:
        if up:
            self.connections += 1
            self.connected.set()
            if self.wake is not None:
                self.wake.set()
        else:
            self.connected.clear()

    def _ingest_online(self) -> None:
        self.ingest_announcements += 1
        if self.wake is not None:
            self.wake.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            if mid in self._ignore:
                self._ignore.discard(mid)
                return
        if reason.value == 0:
            # Crash tests: die on paho's thread as the batch's PUBACK is handled, before the
            # receipt (which can only come later on this same connection) is read.
            self.failpoints.hit(AFTER_PUBLISH)
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._early[mid] = reason  # PUBACK before publish_batch registered its future
                return
        self._call(_resolve, future, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if is_ingest_status_topic(message.topic):
            # A retained `online` comes with every (re)subscription, right after a connection
            # that already made everything due: only a live one is news (else the whole
            # backlog went out twice whenever it arrived after the first pass had begun).
            if bytes(message.payload) == STATUS_ONLINE and not message.retain:
                log.info("%s: ingest announced itself online", self.gateway_id)
                self._call(self._ingest_online)
            return
        try:
            receipt = decode_receipt(bytes(message.payload))
        except ReadingValidationError as exc:
            # A receipt we cannot read retires nothing; ack it so it is not redelivered forever.
            self.bad_receipts += 1
            log.error("%s: unreadable receipt dropped: %s", self.gateway_id, exc)
            client.ack(message.mid, message.qos)
            return
        self._call(self.receipts.put_nowait, ReceivedReceipt(receipt, message.mid))

    def _call(self, func: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(func, *args)


def _resolve(future: asyncio.Future[ReasonCode], reason: ReasonCode) -> None:
    if not future.done():
        future.set_result(reason)


def _fail(future: asyncio.Future[ReasonCode], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
