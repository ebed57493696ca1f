"""The registry's rule (pure): whom a pairing event gives a device, and whom it takes it from."""

from __future__ import annotations

from datetime import UTC, datetime

from careteam.pairing import PAIR, UNPAIR, Change, audit_changes, served
from devices.wire import PairingEvent

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _event(action: str, patient: str, users: tuple[tuple[int, str], ...] = ()) -> PairingEvent:
    return PairingEvent("e", action, "d", "blood_pressure", patient, users, *[None] * 4, AT, AT)


def test_a_household_cuff_serves_each_user_and_its_owner() -> None:
    assert served(_event("pair", "p-a", ((1, "p-a"), (2, "p-b")))) == {"p-a": 1, "p-b": 2}
    assert served(_event("pair", "p-c", ((2, "p-b"),))) == {"p-b": 2, "p-c": None}


def test_pairing_again_for_someone_else_ends_it_for_those_left_out() -> None:
    before = {"p-a": 1, "p-b": 2}
    event = _event("pair", "p-c")
    assert audit_changes(event, before, served(event)) == [
        Change(PAIR, "p-c", None), Change(UNPAIR, "p-a", 1), Change(UNPAIR, "p-b", 2),
    ]  # fmt: skip
    kept = _event("pair", "p-a", ((1, "p-a"),))
    assert audit_changes(kept, before, served(kept)) == [
        Change(PAIR, "p-a", 1), Change(UNPAIR, "p-b", 2),
    ]  # fmt: skip


def test_an_unpairing_ends_it_for_everyone_it_served() -> None:
    event = _event("unpair", "p-a", ((1, "p-a"), (2, "p-b")))
    assert audit_changes(event, {}, served(event)) == [
        Change(UNPAIR, "p-a", 1), Change(UNPAIR, "p-b", 2),
    ]  # fmt: skip
