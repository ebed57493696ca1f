"""The MQTT consumer: batches of reading payloads in, one commit, then receipts and acks.

At-least-once by construction (docs/reliability.md):
- paho-mqtt 2.x, MQTT 5, ``clean_start=False`` and a Session Expiry Interval: a restarted
  ingest gets back the messages it had not acknowledged;
- ``manual_ack=True``: a message is PUBACKed only after the transaction holding its readings
  (or its quarantine row) has committed, in receive order;
- Receive Maximum bounds what the broker sends ahead; `on_message` puts into a bounded queue
  and blocks when it is full, so a slow database slows consumption and never drops;
- acks belong to one connection: after a reconnect the broker redelivers what was in flight
  (with DUP set), so a message received on an earlier connection is written (idempotently) but
  never acknowledged with a packet id that now means something else.

Ingest announces itself on `hv/v1/ingest/{client_id}/status`: retained `online` once its
subscription is granted (so hubs holding a backlog resend at once, instead of waiting out their
backoff after a broker restart), last will `offline`, and `offline` on a clean stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import SQLAlchemyError

from careteam.enrolment_store import enrolled_patients
from devices.errors import ReadingValidationError
from devices.reading import Reading
from devices.wire import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Receipt,
    decode_batch,
    decode_heartbeat,
    decode_packets,
    decode_pairings,
    encode_receipt,
    gateway_id_from_topic,
    ingest_status_topic,
    packet_to_json,
    readings_topic,
    receipts_topic,
)
from ingest.enrolment import NOT_ENROLLED, split_enrolled, split_pairings
from ingest.errors import IngestError, StoreError
from ingest.hub_facts import HubUpdates
from ingest.rows import QuarantineItem, rejected_payload, unique_ids
from ingest.settings import Settings
from ingest.store import (
    HeldConnection,
    PreparedBatch,
    WriteResult,
    prepare_batch,
    uses_copy,
    write_on,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC (the adapter's clock; cores get time passed in)."""
    return datetime.now(UTC)


def sigkill_self(point: str) -> None:
    """Die at once, as a crash would (test failpoints only)."""
    log.warning("failpoint %s: SIGKILL", point)
    logging.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)


@dataclass(slots=True)
class Inbound:
    """One received PUBLISH, not yet acknowledged."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    dup: bool
    generation: int


@dataclass(slots=True)
class IngestStats:
    """Counters that move (logged; read by the tests through the log)."""

    batches: int = 0
    reading_batches: int = 0
    messages: int = 0
    redelivered: int = 0
    readings: int = 0
    inserted: int = 0
    quarantined: int = 0
    conflicts: int = 0
    store_errors: int = 0


@dataclass(slots=True)
class _Decoded:
    readings: list[Reading]
    quarantined: list[QuarantineItem]
    committed_by_gw: dict[str, list[str]]
    quarantined_by_gw: dict[str, list[str]]
    packets_by_gw: dict[str, list[int]]
    hub: HubUpdates = field(default_factory=HubUpdates)
    # Pairing event ids to receipt: recorded, or kept in quarantine.
    pairings_by_gw: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


_Stage = tuple[list[Inbound], _Decoded, PreparedBatch]


def _topic_gw(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["hv", "v1", "gw"] and parts[3]:
        return parts[3]
    return None


def _hub_packets(msg: Inbound, gateway_id: str, out: _Decoded) -> None:
    """A hub's forwarded quarantine: each packet becomes a quarantine row of its own (its JSON,
    which carries the hub's packet id, so a resend lands once) and is named in the receipt."""
    for packet in decode_packets(msg.payload, topic_gateway_id=gateway_id):
        doc = json.dumps(packet_to_json(packet), separators=(",", ":"), ensure_ascii=False)
        out.quarantined.append(
            QuarantineItem(
                msg.topic,
                doc.encode(),
                f"hub:{packet.characteristic}"[:200],
                f"hub quarantine: {packet.reason}",
                gateway_id=gateway_id,
            )
        )
        out.packets_by_gw[gateway_id].append(packet.packet_id)


def _hub_pairings(msg: Inbound, gateway_id: str, out: _Decoded) -> None:
    """A hub's pairing events: the valid ones wait for the enrolment check (`_enforce`), a bad
    one is quarantined alone (its JSON) and receipted under the id it claimed."""
    good, bad = decode_pairings(msg.payload, topic_gateway_id=gateway_id)
    out.hub.pairings.setdefault(gateway_id, []).extend(good)
    out.pairings_by_gw[gateway_id].extend(e.event_id for e in good)
    for rejected in bad:
        out.quarantined.append(
            QuarantineItem(
                msg.topic,
                rejected_payload(rejected.raw),
                rejected.error.field,
                rejected.error.reason,
                gateway_id=gateway_id,
                index=rejected.index,
            )
        )
        if rejected.event_id is not None:
            out.pairings_by_gw[gateway_id].append(rejected.event_id)


def decode_messages(messages: list[Inbound], now: datetime) -> _Decoded:
    """Validate every message of a batch; what fails becomes a quarantine item."""
    out = _Decoded([], [], defaultdict(list), defaultdict(list), defaultdict(list))
    for msg in messages:
        try:
            gateway_id = gateway_id_from_topic(msg.topic)
            if msg.topic.endswith("/quarantine"):
                _hub_packets(msg, gateway_id, out)
                continue
            if msg.topic.endswith("/status"):
                if msg.payload in (STATUS_ONLINE, STATUS_OFFLINE):
                    out.hub.statuses[gateway_id] = msg.payload == STATUS_ONLINE
                elif msg.payload:  # empty: a retained status being cleared
                    raise ReadingValidationError("$", "status must be online or offline")
                continue
            if msg.topic.endswith("/heartbeat"):
                beat = decode_heartbeat(msg.payload, topic_gateway_id=gateway_id)
                out.hub.heartbeats[gateway_id] = beat
                continue
            if msg.topic.endswith("/pairings"):
                _hub_pairings(msg, gateway_id, out)
                continue
            batch = decode_batch(msg.payload, topic_gateway_id=gateway_id, now=now)
        except ReadingValidationError as exc:
            out.quarantined.append(
                QuarantineItem(
                    msg.topic, msg.payload, exc.field, exc.reason, gateway_id=_topic_gw(msg.topic)
                )
            )
            continue
        except Exception as exc:
            # A validator bug on some payload: keep the payload and go on, rather than crash
            # and receive the same message again forever.
            reason = f"unexpected {type(exc).__name__} while validating"
            out.quarantined.append(
                QuarantineItem(msg.topic, msg.payload, "$", reason, gateway_id=_topic_gw(msg.topic))
            )
            continue
        out.readings.extend(batch.readings)
        out.committed_by_gw[gateway_id].extend(r.reading_id for r in batch.readings)
        for bad in batch.rejected:
            out.quarantined.append(
                QuarantineItem(
                    msg.topic,
                    rejected_payload(bad.raw),
                    bad.error.field,
                    bad.error.reason,
                    gateway_id=gateway_id,
                    reading_id=bad.reading_id,
                    index=bad.index,
                )
            )
            if bad.reading_id is not None:
                out.quarantined_by_gw[gateway_id].append(bad.reading_id)
    return out


class Consumer:
    """One ingest replica's MQTT session and batching writer."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        clock: Clock = utc_now,
        die: Callable[[str], None] = sigkill_self,
        samples: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self._settings = settings
        self._samples = samples  # raw-sample envelopes (QoS 0) go here (`ingest.samples`)
        self._engine = engine
        self._clock = clock
        self._die = die
        self._inbox: queue.Queue[Inbound] = queue.Queue(maxsize=2 * settings.receive_maximum)
        self._conn_lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self.stats = IngestStats()
        self._failure: Exception | None = None
        # One connection each for the writer and for the decode stage's enrolment look-ups,
        # held across batches (no pool check-out and pre-ping per batch).
        self._writer = HeldConnection(engine)
        self._lookups = HeldConnection(engine, autocommit=True)
        self._client = self._make_client()

    # -- MQTT side (paho's network thread) ---------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self._settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if s.mqtt_username is not None:
            password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
            client.username_pw_set(s.mqtt_username, password)
        client.will_set(ingest_status_topic(s.client_id), STATUS_OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(1000)  # outgoing receipts in flight
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_subscribe(
        self, client: mqtt.Client, _u: object, _mid: int, reasons: Any, _p: object
    ) -> None:
        codes = list(reasons)
        if any(code.is_failure for code in codes):
            log.error("%s: subscription refused: %s", self._settings.client_id, codes)
        else:
            log.info("%s: subscribed to %s", self._settings.client_id, self._settings.subscription)
            status = ingest_status_topic(self._settings.client_id)
            client.publish(status, STATUS_ONLINE, qos=1, retain=True)

    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("%s: broker refused the connection: %s", self._settings.client_id, reason)
            return
        with self._conn_lock:
            self._generation += 1
        log.info(
            "%s: connected (session present: %s)",
            self._settings.client_id,
            flags.session_present,
        )
        client.subscribe(
            [
                (self._settings.subscription, SubscribeOptions(qos=1)),
                (self._settings.quarantine_subscription, SubscribeOptions(qos=1)),
                *((topic, SubscribeOptions(qos=1)) for topic in self._settings.hub_subscriptions),
                *(
                    [(self._settings.samples_subscription, SubscribeOptions(qos=0))]
                    if self._samples is not None
                    else []
                ),
            ]
        )
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        with self._conn_lock:
            self._generation += 1
        self._connected.clear()
        level = logging.WARNING if reason.is_failure else logging.INFO
        log.log(level, "%s: disconnected: %s", self._settings.client_id, reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if self._samples is not None and msg.topic.endswith("/samples"):
            self._samples(msg.topic, bytes(msg.payload))  # never blocks (QoS 0, hub resends)
            return
        inbound = Inbound(
            msg.mid, msg.qos, msg.topic, bytes(msg.payload), bool(msg.dup), self._generation
        )
        self._inbox.put(inbound)  # blocks when full: backpressure, never a drop

    def start(self) -> None:
        """Connect (asynchronously, retrying) and start paho's network thread."""
        s = self._settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        self._client.connect_async(
            s.mqtt_host, s.mqtt_port, s.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until the first successful connection (or the timeout)."""
        return self._connected.wait(timeout_s)

    def close(self) -> None:
        """Say `offline`, disconnect (the session stays on the broker until it expires), stop."""
        if self._connected.is_set():
            status = ingest_status_topic(self._settings.client_id)
            info = self._client.publish(status, STATUS_OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    # -- writer side (the caller's thread) ---------------------------------------------------

    def _collect(self, stop: threading.Event) -> list[Inbound]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._settings.batch_max_wait_ms / 1000
        while len(batch) < self._settings.batch_max_messages and not stop.is_set():
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    batch.append(self._inbox.get(timeout=remaining))
                else:
                    batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ack(self, messages: list[Inbound]) -> int:
        acked = 0
        with self._conn_lock:
            for msg in messages:  # receive order
                if msg.qos > 0 and msg.generation == self._generation:
                    self._client.ack(msg.mid, msg.qos)
                    acked += 1
        return acked

    def _failpoint(self, point: str) -> None:
        s = self._settings
        # Counted in batches that carry readings: hubs' retained statuses, delivered when the
        # subscription is made, must not move a test's failpoint.
        if s.failpoint == point and self.stats.reading_batches == s.failpoint_batch:
            self._die(point)

    def _commit(
        self, decoded: _Decoded, prepared: PreparedBatch, stop: threading.Event
    ) -> WriteResult | None:
        while True:
            try:
                try:
                    conn = self._writer.get()
                except SQLAlchemyError as exc:
                    raise StoreError(f"batch not committed: {type(exc).__name__}: {exc}") from exc
                result = write_on(
                    conn,
                    prepared,
                    decoded.quarantined,
                    now=self._clock(),
                    hook=self._failpoint if self._settings.failpoint else None,
                    hub=decoded.hub,
                )
            except StoreError as exc:
                self._writer.discard()  # the next attempt starts on a new connection
                self.stats.store_errors += 1
                log.error("%s: %s (retrying)", self._settings.client_id, exc)
                if stop.wait(exc.retry_after_s):
                    return None
            else:
                self.stats.inserted += len(result.inserted_ids)
                self.stats.quarantined += result.quarantined_new
                self.stats.conflicts += len(result.conflicts)
                if result.conflicts:
                    log.warning(
                        "%s: %d readings conflict with stored content under the same id; "
                        "quarantined as conflict",
                        self._settings.client_id,
                        len(result.conflicts),
                    )
                return result

    def _receipt(self, decoded: _Decoded, conflicts: frozenset[str]) -> list[mqtt.MQTTMessageInfo]:
        sent: list[mqtt.MQTTMessageInfo] = []
        gateways = (
            set(decoded.committed_by_gw)
            | set(decoded.quarantined_by_gw)
            | set(decoded.packets_by_gw)
            | set(decoded.pairings_by_gw)
        )
        for gateway_id in sorted(gateways):
            committed = unique_ids(decoded.committed_by_gw.get(gateway_id, []))
            clashed = tuple(i for i in committed if i in conflicts) if conflicts else ()
            if clashed:
                committed = tuple(i for i in committed if i not in conflicts)
            receipt = Receipt(
                committed,
                unique_ids([*decoded.quarantined_by_gw.get(gateway_id, []), *clashed]),
                clashed,
                tuple(dict.fromkeys(decoded.packets_by_gw.get(gateway_id, []))),
                pairings=unique_ids(decoded.pairings_by_gw.get(gateway_id, [])),
            )
            topic = receipts_topic(gateway_id)
            sent.append(self._client.publish(topic, encode_receipt(receipt), qos=1))
        return sent

    def publish_receipt(self, gateway_id: str, receipt: Receipt) -> None:
        """Publish a receipt to a gateway (QoS 1): the raw-sample sink's way back."""
        self._client.publish(receipts_topic(gateway_id), encode_receipt(receipt), qos=1)

    def _enrolments(
        self, gateway_ids: set[str], stop: threading.Event
    ) -> dict[str, frozenset[str]] | None:
        """The batch's gateways' enrolled patients; None when stopped while the store is down."""
        while True:
            try:
                conn = self._lookups.get()
                found = enrolled_patients(conn, gateway_ids)
                conn.rollback()  # ends SQLAlchemy's own transaction; nothing to send (autocommit)
                return found
            except SQLAlchemyError as exc:
                self._lookups.discard()
                self.stats.store_errors += 1
                log.error(
                    "%s: enrolment look-up failed: %s (retrying)", self._settings.client_id, exc
                )
                if stop.wait(5.0):
                    return None

    def _enforce(self, decoded: _Decoded, stop: threading.Event) -> bool:
        """Move readings and pairing events of unenrolled hubs or patients to quarantine
        (receipted as such)."""
        pairings = decoded.hub.pairings
        if not decoded.readings and not pairings:
            return True
        gateways = {r.gateway_id for r in decoded.readings} | set(pairings)
        enrolled = self._enrolments(gateways, stop)
        if enrolled is None:
            return False
        if pairings:
            kept, refused_events = split_pairings(pairings, enrolled)
            decoded.hub.pairings = kept
            decoded.quarantined.extend(refused_events)
            if refused_events:
                log.warning(
                    "%s: %d pairing events quarantined: %s",
                    self._settings.client_id,
                    len(refused_events),
                    NOT_ENROLLED,
                )
        if not decoded.readings:
            return True
        topics = {gw: readings_topic(gw) for gw in decoded.committed_by_gw}
        split = split_enrolled(decoded.readings, enrolled, topics)
        if split.refused:
            refused = {item.reading_id for item in split.refused}
            decoded.readings = split.kept
            decoded.quarantined.extend(split.refused)
            for gateway_id, ids in decoded.committed_by_gw.items():
                moved = [i for i in ids if i in refused]
                if moved:
                    decoded.committed_by_gw[gateway_id] = [i for i in ids if i not in refused]
                    decoded.quarantined_by_gw[gateway_id].extend(moved)
            log.warning(
                "%s: %d readings quarantined: %s",
                self._settings.client_id,
                len(split.refused),
                NOT_ENROLLED,
            )
        return True

    def _prepare(self, messages: list[Inbound], stop: threading.Event) -> _Stage | None:
        now = self._clock()
        decoded = decode_messages(messages, now)
        if not self._enforce(decoded, stop):
            return None
        prepared = prepare_batch(decoded.readings, now=now, copy=uses_copy(self._engine))
        return messages, decoded, prepared

    def process(self, messages: list[Inbound], stop: threading.Event) -> None:
        """Validate, check enrolment, commit, receipt and acknowledge one batch of messages."""
        stage = self._prepare(messages, stop)
        if stage is not None:
            self._write(stage, stop)

    def _write(self, stage: _Stage, stop: threading.Event) -> None:
        messages, decoded, prepared = stage
        self.stats.batches += 1
        if decoded.readings:
            self.stats.reading_batches += 1
        redelivered = sum(1 for m in messages if m.dup)
        if self._settings.unsafe_ack_before_commit:
            # The wrong order at both acknowledgements (the broker's and the hub's end-to-end
            # receipt), for the tests of the loss checkers only. Both are out before the commit
            # starts: the broker confirmed the receipts, which paho sent after the PUBACKs on
            # the same connection, so a failpoint that kills us before the commit really loses
            # the batch (else the kill could beat paho's network thread to the socket).
            self._ack(messages)
            for info in self._receipt(decoded, frozenset()):
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(10.0)
        inserted_before = self.stats.inserted
        result = self._commit(decoded, prepared, stop)
        if result is None:
            return  # stopping: unacknowledged messages are redelivered to the next run
        self._failpoint("after_commit")
        self._receipt(decoded, result.conflicts)
        if not self._settings.unsafe_ack_before_commit:
            self._ack(messages)
        self.stats.messages += len(messages)
        self.stats.redelivered += redelivered
        self.stats.readings += len(decoded.readings)
        if redelivered:
            log.info(
                "%s: batch %d: redelivered=%d messages, already_stored=%d readings",
                self._settings.client_id,
                self.stats.batches,
                redelivered,
                len(prepared.readings) - (self.stats.inserted - inserted_before),
            )

    def _decode_loop(self, stop: threading.Event, out: queue.Queue[_Stage]) -> None:
        try:
            self._decode_until(stop, out)
        except Exception as exc:
            log.exception("%s: validation stage failed; stopping", self._settings.client_id)
            self._failure = exc
            stop.set()  # the unacknowledged messages are redelivered after a restart

    def _decode_until(self, stop: threading.Event, out: queue.Queue[_Stage]) -> None:
        while not stop.is_set():
            messages = self._collect(stop)
            if messages:
                staged = self._prepare(messages, stop)
                if staged is None:
                    return  # stopping: the messages were not acknowledged
                while not stop.is_set():
                    try:
                        out.put(staged, timeout=0.2)
                        break
                    except queue.Full:
                        continue

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch being written is finished first.

        Two stages: a thread collects and validates the next batch while this thread commits
        the current one (the commit waits on the database without holding the GIL). Batches
        are handed over in order, so acknowledgements stay in receive order.

        Raises:
            IngestError: the validation stage failed unexpectedly (after stopping cleanly).
        """
        staged: queue.Queue[_Stage] = queue.Queue(maxsize=1)
        decoder = threading.Thread(
            target=self._decode_loop, args=(stop, staged), name="decode", daemon=True
        )
        decoder.start()
        while not stop.is_set():
            try:
                stage = staged.get(timeout=0.2)
            except queue.Empty:
                continue
            self._write(stage, stop)
        decoder.join(5)
        self._writer.close()
        if not decoder.is_alive():
            self._lookups.close()
        log.info("%s: stopping: %s", self._settings.client_id, self.stats)
        if self._failure is not None:
            raise IngestError("the validation stage failed") from self._failure
