"""The durable outbox on a real SQLite file: atomic store, retire only on receipt, disk full."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from devices.sessions.events import DeviceCursor, QuarantinedPacket
from gateway import db
from gateway.errors import OutboxFullError
from gateway.outbox import Backoff, Outbox
from tests.gateway.factories import T0, glucose, meter


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "gw.sqlite", backoff=Backoff(first_s=10, max_s=40, jitter_fraction=0))
    yield box  # type: ignore[misc]
    box.close()


def test_every_connection_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.sqlite")
    assert box.durability() == ("wal", 2)
    other = db.connect(tmp_path / "gw.sqlite")
    assert db.durability(other) == ("wal", 2)
    other.close()
    box.close()


def test_store_writes_readings_quarantine_and_cursor_together(outbox: Outbox) -> None:
    dev = meter()
    readings = [glucose(s) for s in range(1, 6)]
    bad = QuarantinedPacket("2a18", b"\x10\x01", "truncated", T0)
    result = outbox.store(dev.id, readings, DeviceCursor(5, readings[-1].device_time), [bad], T0)
    assert (result.stored, result.already_known, result.quarantined) == (5, 0, 1)
    assert outbox.cursor(dev.id) == DeviceCursor(5, readings[-1].device_time)
    assert [r.reading_id for r in outbox.due(T0, 100)] == [r.reading_id for r in readings]
    assert outbox.quarantined(dev.id) == [bad]


def test_a_reading_stored_twice_is_kept_once(outbox: Outbox) -> None:
    dev = meter()
    outbox.store(dev.id, [glucose(1), glucose(2)], DeviceCursor(2, None), [], T0)
    outbox.retire([glucose(1).reading_id], [], T0)
    again = outbox.store(
        dev.id, [glucose(1), glucose(2), glucose(3)], DeviceCursor(3, None), [], T0
    )
    assert (again.stored, again.already_known) == (1, 2)
    assert outbox.state_of(glucose(1).reading_id) == "retired"
    assert sorted(outbox.reading_ids(dev.id)) == sorted(glucose(s).reading_id for s in (1, 2, 3))


def test_only_a_receipt_retires_and_resends_back_off(outbox: Outbox) -> None:
    dev = meter()
    r1, r2 = glucose(1), glucose(2)
    outbox.store(dev.id, [r1, r2], DeviceCursor(2, None), [], T0)
    outbox.mark_attempted([r1.reading_id, r2.reading_id], T0)
    assert outbox.due(T0 + timedelta(seconds=9), 10) == []
    assert len(outbox.due(T0 + timedelta(seconds=10), 10)) == 2
    outbox.mark_attempted([r1.reading_id, r2.reading_id], T0 + timedelta(seconds=10))
    # second attempt waits twice as long
    assert outbox.due(T0 + timedelta(seconds=29), 10) == []
    assert outbox.retire([r1.reading_id], [r2.reading_id], T0) == 2
    assert outbox.retire([r1.reading_id], [], T0) == 0
    assert outbox.due(T0 + timedelta(days=1), 10) == []
    stats = outbox.stats(T0)
    assert (stats.pending, stats.retired, stats.oldest_pending_s) == (0, 2, None)


def test_backoff_is_capped() -> None:
    backoff = Backoff(first_s=10, max_s=40)
    assert [backoff.delay_s(n) for n in (1, 2, 3, 4, 9)] == [10, 20, 40, 40, 40]


def test_backoff_jitter_spreads_each_delay_by_a_fifth() -> None:
    backoff = Backoff(first_s=10, max_s=40)
    assert [backoff.delay_s(2, u) for u in (0.0, 0.5, 0.999)] == pytest.approx([16, 20, 23.992])
    assert backoff.delay_s(9, 0.0) == pytest.approx(32)


def test_hubs_resend_out_of_step(tmp_path: Path) -> None:
    # Issue 14: a fleet that lost the broker together must not resend together. Twenty hubs
    # (outboxes with their own random source) attempt the same reading at the same moment.
    r1 = glucose(1)
    due_at = []
    for hub in range(20):
        box = Outbox(
            tmp_path / f"hub{hub}.sqlite",
            backoff=Backoff(first_s=30, max_s=3600),
            rng=random.Random(hub),  # each hub its own source (seeded: the test is repeatable)
        )
        box.store(meter().id, [r1], None, [], T0)
        box.mark_attempted([r1.reading_id], T0)
        moments = [s for s in range(24, 37) if box.due(T0 + timedelta(seconds=s), 1)]
        due_at.append(moments[0])  # the first whole second at which it is due again
        box.close()
    assert all(24 <= s <= 36 for s in due_at)  # 30 s +- 20 %
    assert len(set(due_at)) >= 5, due_at  # spread over the window, not one instant


def test_refused_batches_become_due_again_now(outbox: Outbox) -> None:
    r1 = glucose(1)
    outbox.store(meter().id, [r1], None, [], T0)
    outbox.mark_attempted([r1.reading_id], T0)
    outbox.reschedule_now([r1.reading_id], T0 + timedelta(seconds=1))
    assert outbox.due(T0 + timedelta(seconds=1), 10) == [r1]


def test_disk_full_stores_nothing_and_keeps_the_cursor(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "small.sqlite", max_size_bytes=64 * 1024)
    dev = meter()
    box.store(dev.id, [glucose(1)], DeviceCursor(1, "a"), [], T0)
    many = [glucose(s) for s in range(2, 400)]
    with pytest.raises(OutboxFullError) as info:
        box.store(dev.id, many, DeviceCursor(399, "b"), [], T0)
    assert info.value.path.endswith("small.sqlite")
    assert box.cursor(dev.id) == DeviceCursor(1, "a")
    assert box.reading_ids(dev.id) == [glucose(1).reading_id]
    box.close()


def test_a_corrupted_row_is_quarantined_not_published(outbox: Outbox, tmp_path: Path) -> None:
    outbox.store(meter().id, [glucose(1)], None, [], T0)
    conn = sqlite3.connect(tmp_path / "gw.sqlite")
    conn.execute("UPDATE readings SET payload = json_set(payload, '$.sequence', 99)")
    conn.commit()
    conn.close()
    assert outbox.due(T0, 10) == []
    [kept] = outbox.quarantined()
    assert kept.uuid == "outbox"
    assert b'"sequence":99' in kept.raw.replace(b" ", b"")
    assert "reading_id" in kept.reason


def test_retired_readings_and_forwarded_packets_are_pruned_after_the_retention(
    outbox: Outbox,
) -> None:
    dev = meter()
    old, recent, pending = glucose(1), glucose(2), glucose(3)
    packets = [QuarantinedPacket("2a18", bytes([n]), "truncated", T0) for n in range(3)]
    outbox.store(dev.id, [old, recent, pending], DeviceCursor(3, None), packets, T0)
    outbox.retire([old.reading_id], [], T0)
    outbox.retire([recent.reading_id], [], T0 + timedelta(days=6))
    first, second, third = outbox.unforwarded(T0, 10, resend_after_s=60)
    assert [p.raw for p in (first, second, third)] == [b"\x00", b"\x01", b"\x02"]
    assert outbox.mark_forwarded([first.packet_id], T0) == 1
    assert outbox.mark_forwarded([first.packet_id], T0) == 0  # a repeated receipt
    outbox.mark_forwarded([second.packet_id], T0 + timedelta(days=6))
    assert outbox.prune(T0 + timedelta(days=8), retention_s=7 * 86400) == (1, 1)
    assert sorted(outbox.reading_ids(dev.id)) == sorted([recent.reading_id, pending.reading_id])
    assert [q.raw for q in outbox.quarantined(dev.id)] == [b"\x01", b"\x02"]
    # A pending reading and an unforwarded packet are never pruned, however old.
    assert outbox.prune(T0 + timedelta(days=400), retention_s=7 * 86400) == (1, 1)
    assert outbox.reading_ids(dev.id) == [pending.reading_id]
    assert [p.packet_id for p in outbox.unforwarded(T0, 10, resend_after_s=60)] == [third.packet_id]


def test_forwarded_packets_wait_for_the_resend_delay_or_a_reconnection(outbox: Outbox) -> None:
    dev = meter()
    outbox.store(dev.id, [], None, [QuarantinedPacket("2a18", b"\x01", "bad", T0)], T0)
    [packet] = outbox.unforwarded(T0, 10, resend_after_s=60)
    outbox.mark_sent([packet.packet_id], T0)
    assert outbox.unforwarded(T0 + timedelta(seconds=30), 10, resend_after_s=60) == []
    assert outbox.unforwarded(T0 + timedelta(seconds=61), 10, resend_after_s=60) == [packet]
    outbox.make_all_due(T0 + timedelta(seconds=1))
    assert outbox.unforwarded(T0 + timedelta(seconds=1), 10, resend_after_s=60) == [packet]


def test_an_outbox_file_from_before_forwarding_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,"
        " characteristic TEXT NOT NULL, raw BLOB NOT NULL, reason TEXT NOT NULL,"
        " received_at_s REAL NOT NULL);"
        "INSERT INTO quarantine (device_id, characteristic, raw, reason, received_at_s)"
        " VALUES ('d1', '2a18', x'01', 'bad', 0);"
    )
    conn.close()
    box = Outbox(path)
    try:
        [packet] = box.unforwarded(T0, 10, resend_after_s=60)
        assert (packet.device_id, packet.raw) == ("d1", b"\x01")
    finally:
        box.close()


def test_a_clock_stepped_back_does_not_stall_resends(outbox: Outbox) -> None:
    r1 = glucose(1)
    ahead = T0 + timedelta(hours=2)  # the hub booted with its clock two hours ahead
    outbox.store(meter().id, [r1], None, [], ahead)
    outbox.mark_attempted([r1.reading_id], ahead)  # next attempt: ahead + 10 s
    # NTP steps the clock back two hours: a schedule no backoff (40 s at most) could have set
    # is due now, not in two hours.
    assert outbox.due(T0, 10) == [r1]
    outbox.mark_attempted([r1.reading_id], T0)
    assert outbox.due(T0 + timedelta(seconds=19), 10) == []  # the backoff holds again


def test_a_full_outbox_says_since_when_until_it_stores_again(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "small.sqlite", max_size_bytes=64 * 1024)
    dev = meter()
    assert box.full_since is None
    with pytest.raises(OutboxFullError):
        box.store(dev.id, [glucose(s) for s in range(1, 400)], None, [], T0)
    with pytest.raises(OutboxFullError):
        box.store(dev.id, [glucose(s) for s in range(1, 400)], None, [], T0 + timedelta(minutes=1))
    assert box.full_since == T0  # the heartbeat reports it (gateway.delivery.heartbeat_loop)
    box.store(dev.id, [glucose(1)], None, [], T0 + timedelta(minutes=2))
    assert box.full_since is None
    box.close()
