"""Moving readings from the outbox to the broker, and receipts back into the outbox.

`publish_loop` takes what is due, records the attempt, publishes batches (bounded by bytes,
so a batch stays under the broker's `message_size_limit`) and waits for the PUBACK; it also
forwards due raw-sample batches (`gateway.samples`, backed off per attempt) on their own
topic, and pairing events in order (`Outbox.due_pairings`). A failed publish leaves the
readings pending: they come back when their backoff expires, or at once after the next
(re)connection. `receipt_loop` retires what a receipt names and only then acknowledges the
receipt message, so a crash in between re-delivers the receipt.

A full disk stops the outbox from taking new readings (`Outbox.store`), not the hub: the
bookkeeping writes here (attempts, retirements, forwarded marks) are skipped when the disk is
full, so what is pending still goes out (at most once per `no_subscriber_retry_s` while they
cannot be noted) and is simply sent again later; ingest keeps one copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from devices.reading import Reading, reading_to_json
from devices.wire import DeviceContact, Heartbeat, HubPacket, PairingEvent
from gateway.cancelling import checkpoint
from gateway.db import is_disk_full
from gateway.errors import PublishError
from gateway.failpoints import AFTER_COMMIT, Failpoints
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.registry import PairedDevice
from gateway.samples import SampleStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_ENVELOPE_BYTES = 200
_T = TypeVar("_T")


async def _note(what: str, write: Callable[..., _T], *args: object) -> tuple[bool, _T | None]:
    """Run an outbox bookkeeping write in a thread: (True, its result), or (False, None) when
    the disk is full (logged).

    Raises:
        sqlite3.Error: any other database failure.
    """
    try:
        return True, await asyncio.to_thread(write, *args)
    except sqlite3.Error as exc:
        if not is_disk_full(exc):
            raise
        log.warning("outbox: %s not noted, the disk is full", what)
        return False, None


def batches(readings: Sequence[Reading], max_bytes: int, max_count: int) -> Iterator[list[Reading]]:
    """Split readings into batches whose encoded size stays under `max_bytes`."""
    batch: list[Reading] = []
    size = _ENVELOPE_BYTES
    for reading in readings:
        item = len(json.dumps(reading_to_json(reading), ensure_ascii=False).encode()) + 1
        if batch and (size + item > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], _ENVELOPE_BYTES
        batch.append(reading)
        size += item
    if batch:
        yield batch


async def publish_loop(
    outbox: Outbox,
    publisher: Publisher,
    now: Clock,
    wake: asyncio.Event,
    *,
    max_batch_bytes: int = 60_000,
    max_batch_count: int = 500,
    poll_s: float = 1.0,
    no_subscriber_retry_s: float = 5.0,
    packet_resend_s: float = 60.0,
    pairing_resend_s: float = 30.0,
    failpoints: Failpoints | None = None,
    samples: SampleStore | None = None,
) -> None:
    """Publish due readings forever (cancel to stop).

    Everything pending becomes due at once after each (re)connection and each `online` of an
    ingest replica. Packets the hub quarantined are forwarded to ingest's quarantine (again
    after `packet_resend_s` until a receipt names them). A batch refused with 0x10 (no
    subscriber yet) is retried after `no_subscriber_retry_s` without counting as an attempt,
    so a broker restart that briefly leaves ingest unsubscribed never pushes the backlog into
    the long resend backoff. Pairing events are sent oldest first, all that wait together,
    again after `pairing_resend_s` until a receipt names them.
    """
    failpoints = failpoints or Failpoints()
    seen: tuple[int, int] = (0, 0)
    while True:
        checkpoint()
        # One snapshot: a connection made while this pass awaits the outbox is seen at the
        # next pass, which makes everything due first (a pass on the stale snapshot sent the
        # backlog, and the connection's resend sent it all a second time).
        events = (publisher.connections, publisher.ingest_announcements)
        connected = publisher.connected.is_set()
        if events != seen and connected:
            seen = events
            # resend after a (re)connection or when ingest announces itself
            await _note("resend", outbox.make_all_due, now())
            if samples is not None:
                await _note("sample resend", samples.make_all_due, now())
        due = await asyncio.to_thread(outbox.due, now(), max_batch_count * 4)
        packets = await asyncio.to_thread(outbox.unforwarded, now(), 100, packet_resend_s)
        if packets and publisher.connected.is_set():
            await _forward_packets(outbox, publisher, packets, now)
        pairings = await asyncio.to_thread(outbox.due_pairings, now(), pairing_resend_s)
        if pairings and publisher.connected.is_set():
            await _forward_pairings(outbox, publisher, pairings, now)
        if samples is not None and publisher.connected.is_set():
            await forward_samples(samples, publisher, now, max_bytes=max_batch_bytes)
        if not connected and publisher.connected.is_set():
            continue  # connected meanwhile: start over from the connection's resend
        if not due or not connected:
            wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_s):
                    await wake.wait()
            continue
        failpoints.hit(AFTER_COMMIT)
        noted = True
        for batch in batches(due, max_batch_bytes, max_batch_count):
            ids = [r.reading_id for r in batch]
            noted = (await _note("attempt", outbox.mark_attempted, ids, now()))[0] and noted
            try:
                await publisher.publish_batch(batch)
            except PublishError as exc:
                if exc.no_subscribers:
                    retry_at = now() + timedelta(seconds=no_subscriber_retry_s)
                    await _note("retry", outbox.retry_soon, ids, retry_at)
                    log.info(
                        "%s: no ingest subscribed yet (0x10); retrying in %.0f s",
                        publisher.gateway_id,
                        no_subscriber_retry_s,
                    )
                    break
                log.warning(
                    "%s: batch of %d not delivered: %s", publisher.gateway_id, len(batch), exc
                )
                break
        if not noted:  # the attempts are not on disk: hold the next round back instead
            await asyncio.sleep(no_subscriber_retry_s)


async def _forward_packets(
    outbox: Outbox, publisher: Publisher, packets: Sequence[HubPacket], now: Clock
) -> None:
    await _note("forwarding", outbox.mark_sent, [p.packet_id for p in packets], now())
    try:
        await publisher.publish_packets(packets)
    except PublishError as exc:
        log.warning(
            "%s: %d quarantined packets not forwarded: %s", publisher.gateway_id, len(packets), exc
        )


async def _forward_pairings(
    outbox: Outbox, publisher: Publisher, events: Sequence[PairingEvent], now: Clock
) -> None:
    if not (await _note("pairings sent", outbox.mark_pairings_sent,
                        [e.event_id for e in events], now()))[0]:  # fmt: skip
        return  # not backed off on disk: they wait for room, not resent on every pass
    try:
        await publisher.publish_pairings(events)
    except PublishError as exc:
        level = logging.DEBUG if exc.no_subscribers else logging.WARNING
        log.log(level, "%s: %d pairing events not sent: %s",
                publisher.gateway_id, len(events), exc)  # fmt: skip


async def forward_samples(
    samples: SampleStore, publisher: Publisher, now: Clock, *, max_bytes: int, limit: int = 200
) -> int:
    """Publish the due raw-sample batches in envelopes under `max_bytes`; returns how many
    were sent. Each is backed off whatever the outcome: only a receipt forwards it."""
    due = await asyncio.to_thread(samples.due_batches, now(), limit)
    sent = 0
    chunk: list[tuple[str, str]] = []
    size = _ENVELOPE_BYTES
    for item in [*due, None]:
        if item is not None and (not chunk or size + len(item[1]) + 1 <= max_bytes):
            chunk.append(item)
            size += len(item[1]) + 1
            continue
        if chunk:
            ids = [batch_id for batch_id, _ in chunk]
            if not (await _note("samples sent", samples.mark_sent, ids, now()))[0]:
                return sent  # not backed off on disk: they wait for room, not resent each poll
            try:
                await publisher.publish_samples([payload for _, payload in chunk])
            except PublishError as exc:
                level = logging.DEBUG if exc.no_subscribers else logging.WARNING
                log.log(level, "%s: %d sample batches not forwarded: %s",
                        publisher.gateway_id, len(chunk), exc)  # fmt: skip
                return sent
            sent += len(chunk)
        if item is not None:
            chunk, size = [item], _ENVELOPE_BYTES + len(item[1]) + 1
    return sent


async def prune_loop(outbox: Outbox, now: Clock, retention_s: float, every_s: float) -> None:
    """Delete retired readings and forwarded packets older than `retention_s` (cancel to stop)."""
    while True:
        checkpoint()
        try:
            readings, packets = await asyncio.to_thread(outbox.prune, now(), retention_s)
        except sqlite3.Error as exc:
            log.warning("outbox prune failed (tried again later): %s", exc)
        else:
            if readings or packets:
                log.info(
                    "outbox pruned %d retired readings, %d forwarded packets", readings, packets
                )
        await asyncio.sleep(every_s)


def heartbeat(
    gateway_id: str, devices: Sequence[PairedDevice], now: datetime, *, storage_full: bool = False
) -> Heartbeat:
    """The hub's heartbeat: its paired devices and when it last reached each one (a session
    with the device, whatever it held: contact, not readings), and whether its outbox is full."""
    return Heartbeat(
        gateway_id,
        now,
        tuple(
            DeviceContact(d.device_id, d.patient_id, d.kind, d.paired_at, d.last_sync_at)
            for d in devices
        ),
        storage_full,
    )


async def heartbeat_loop(
    publisher: Publisher,
    devices: Callable[[], Sequence[PairedDevice]],
    now: Clock,
    every_s: float,
    storage_full: Callable[[], bool] = lambda: False,
) -> None:
    """Publish a heartbeat every `every_s`, right after each (re)connection and as soon as
    `storage_full()` changes (cancel to stop).

    Raises:
        sqlite3.Error: the device registry could not be read.
    """
    seen_connections = 0
    said_full = False
    next_at = 0.0
    loop = asyncio.get_running_loop()
    while True:
        checkpoint()
        reconnected = publisher.connections != seen_connections and publisher.connected.is_set()
        full = storage_full()
        changed = full != said_full
        if publisher.connected.is_set() and (reconnected or changed or loop.time() >= next_at):
            seen_connections = publisher.connections
            paired = await asyncio.to_thread(devices)
            beat = heartbeat(publisher.gateway_id, paired, now(), storage_full=full)
            try:
                await publisher.publish_heartbeat(beat)
                next_at = loop.time() + every_s
                said_full = full
            except PublishError as exc:
                log.warning("%s: heartbeat not delivered: %s", publisher.gateway_id, exc)
        await asyncio.sleep(min(1.0, every_s))


async def receipt_loop(
    outbox: Outbox, publisher: Publisher, now: Clock, samples: SampleStore | None = None
) -> None:
    """Retire readings (and sample batches) named by receipts, then acknowledge each receipt
    (cancel to stop)."""
    while True:
        checkpoint()
        received = await publisher.receipts.get()
        receipt = received.receipt
        # Not noted (a full disk): the readings stay pending and are sent again; ingest keeps
        # one copy and names them in its next receipt.
        _, retired = await _note("receipt", outbox.retire, receipt.committed,
                                 receipt.quarantined, now())  # fmt: skip
        log.debug(
            "%s: receipt retired %d of %d",
            publisher.gateway_id,
            retired or 0,
            len(receipt.committed) + len(receipt.quarantined),
        )
        if receipt.packets:
            await _note("forwarded packets", outbox.mark_forwarded, receipt.packets, now())
        if receipt.pairings:
            await _note("forwarded pairings", outbox.mark_pairings_forwarded, receipt.pairings,
                        now())  # fmt: skip
        if receipt.sample_batches and samples is not None:
            await _note("forwarded samples", samples.mark_forwarded, receipt.sample_batches, now())
        if receipt.conflicts:  # kept server-side in quarantine; worth an operator's look
            log.warning(
                "%s: ingest quarantined %d readings as conflicting with stored content",
                publisher.gateway_id,
                len(receipt.conflicts),
            )
        publisher.ack(received.mid)
