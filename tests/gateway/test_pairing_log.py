"""The hub's pairing log on a real SQLite file: every pairing and unpairing is written in the
registry's own transaction, kept until a receipt names it, and sent oldest first, newer events
never overtaking older ones that still wait for their receipt; a hub file from before the log
reports the devices it already had."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from devices.wire import PairingEvent
from gateway.outbox import Outbox
from gateway.registry import PairedDevice, Registry
from tests.gateway.factories import T0, meter

RESEND_S = 30.0


@pytest.fixture
def hub_file(tmp_path: Path) -> Iterator[tuple[Registry, Outbox]]:
    path = tmp_path / "gw.sqlite"
    registry, outbox = Registry(path), Outbox(path)
    yield registry, outbox
    registry.close()
    outbox.close()


def _cuff(patient: str = "p-1") -> PairedDevice:
    return PairedDevice(
        meter("BP-1"), "F2:00", "blood_pressure", patient, T0, user_patients=((2, "p-2"),)
    )


def _due(outbox: Outbox, after_s: float = 0.0) -> list[PairingEvent]:
    return outbox.due_pairings(T0 + timedelta(seconds=after_s), RESEND_S)


def test_pairings_are_sent_in_order_and_kept_until_receipted(
    hub_file: tuple[Registry, Outbox],
) -> None:
    registry, outbox = hub_file
    registry.add(PairedDevice(meter(), "F1:00", "glucose", "p-1", T0))
    [paired] = _due(outbox)
    assert (paired.action, paired.patient_id, paired.model, paired.serial) == (
        "pair", "p-1", "GM-1", "MTR-0001",
    )  # fmt: skip
    outbox.mark_pairings_sent([paired.event_id], T0)
    registry.add(_cuff())
    registry.remove(meter().id, T0 + timedelta(seconds=5))
    # The first is on its way: nothing newer goes out before its receipt (or its resend).
    assert _due(outbox, 10) == []
    again = _due(outbox, RESEND_S + 1)
    assert [(e.action, e.device_id) for e in again] == [
        ("pair", meter().id), ("pair", meter("BP-1").id), ("unpair", meter().id),
    ]  # fmt: skip
    assert again[1].user_patients == ((2, "p-2"),)
    assert again[2].at == T0 + timedelta(seconds=5) and again[2].paired_at == T0
    outbox.mark_pairings_sent([e.event_id for e in again], T0 + timedelta(seconds=31))
    assert outbox.mark_pairings_forwarded([again[0].event_id], T0) == 1
    assert outbox.mark_pairings_forwarded([again[0].event_id], T0) == 0  # receipted twice
    assert outbox.pending_pairings() == 2
    # A reconnection makes what waits due at once, in order.
    outbox.make_all_due(T0 + timedelta(seconds=32))
    assert [e.event_id for e in _due(outbox, 32)] == [e.event_id for e in again[1:]]
    outbox.mark_pairings_forwarded([e.event_id for e in again[1:]], T0 + timedelta(seconds=33))
    assert _due(outbox, 100) == [] and outbox.pending_pairings() == 0
    outbox.prune(T0 + timedelta(days=8), retention_s=7 * 86400)
    assert registry.all() == [_cuff()]


def test_a_change_that_fails_writes_neither_the_device_nor_its_event(
    hub_file: tuple[Registry, Outbox], tmp_path: Path
) -> None:
    registry, outbox = hub_file
    breaker = sqlite3.connect(tmp_path / "gw.sqlite")
    breaker.execute(
        "CREATE TRIGGER no_unpair BEFORE INSERT ON pairing_events WHEN NEW.action = 'unpair'"
        " BEGIN SELECT RAISE(ABORT, 'the log refuses'); END"
    )  # a log that refuses the write, as a full disk would
    breaker.commit()
    registry.add(PairedDevice(meter(), "F1:00", "glucose", "p-1", T0))
    with pytest.raises(sqlite3.IntegrityError):
        registry.remove(meter().id, T0)
    assert [p.device_id for p in registry.all()] == [meter().id]  # still paired
    assert [e.action for e in _due(outbox)] == ["pair"]
    breaker.close()


def test_a_hub_file_from_before_the_log_reports_its_devices_once(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE devices (device_id TEXT PRIMARY KEY, address TEXT NOT NULL, name TEXT,"
        " kind TEXT NOT NULL, patient_id TEXT NOT NULL, manufacturer TEXT, model TEXT,"
        " serial TEXT, firmware TEXT, paired_at_s REAL NOT NULL, last_sync_at_s REAL,"
        " last_outcome TEXT, users TEXT);"
    )
    old.execute(
        "INSERT INTO devices VALUES ('d-cuff', 'A', NULL, 'blood_pressure', 'p-1', 'Omron',"
        " 'M7', 'S1', NULL, ?, NULL, NULL, ?)",
        (T0.timestamp(), json.dumps([[1, "p-1"], [2, "p-2"]])),
    )
    old.commit()
    old.close()
    outbox = Outbox(path)
    registry = Registry(path)  # a second connection: the log is made once
    try:
        [event] = _due(outbox)
        assert (event.action, event.device_id, event.user_patients, event.at) == (
            "pair", "d-cuff", ((1, "p-1"), (2, "p-2")), T0,
        )  # fmt: skip
        assert len(event.event_id) == 32
    finally:
        registry.close()
        outbox.close()
