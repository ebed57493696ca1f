"""What hubs say about themselves, kept for the data-freshness findings (`alerts.freshness`).

A hub's status (`online` / `offline`: its retained status and last will) and its heartbeat
(alive, and when it last reached each paired device) arrive as MQTT messages like readings do
and are written in the same transaction as the batch they came with, before the messages are
acknowledged. Times are ingest's receive times: the hub's clock may be wrong, and freshness is
about when *we* last heard. The heartbeat's own time stamp (the hub's clock) against ingest's
gives the hub's clock offset (heartbeats expire at the broker after a minute, so a late one
cannot pass for a skewed clock), and the heartbeat says whether the hub's storage is full.

Pairing events (a device paired to or unpaired from the hub's patients) go to the care-team
record's device registry (`careteam.device_store.record_pairings`, audited there) in the same
transaction, after ingest has checked that the hub may report them (`ingest.enrolment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from careteam.device_store import record_pairings
from devices.wire import Heartbeat, PairingEvent
from ingest import schema
from ingest.store import dialect_insert


@dataclass(slots=True)
class HubUpdates:
    """The last status and the last heartbeat per hub within one batch (receive order)."""

    statuses: dict[str, bool] = field(default_factory=dict)
    heartbeats: dict[str, Heartbeat] = field(default_factory=dict)
    pairings: dict[str, list[PairingEvent]] = field(default_factory=dict)  # in arrival order

    def __bool__(self) -> bool:
        return bool(self.statuses or self.heartbeats or self.pairings)


def _upsert_status(conn: sa.Connection, gateway_id: str, values: Mapping[str, object]) -> None:
    stmt = dialect_insert(conn, schema.hub_status).values(gateway_id=gateway_id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["gateway_id"], set_=dict(values)))


def write_hub_updates(conn: sa.Connection, updates: HubUpdates, now: datetime) -> None:
    """Record statuses, heartbeats and pairing events in the caller's transaction.

    A heartbeat replaces the hub's device list (an unpaired device stops being watched) and,
    being proof of life, sets the hub online.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a statement.
    """
    for gateway_id, online in sorted(updates.statuses.items()):
        _upsert_status(conn, gateway_id, {"online": online, "status_at": now})
    for gateway_id, beat in sorted(updates.heartbeats.items()):
        offset_s = round((beat.sent_at - now).total_seconds(), 3)
        _upsert_status(conn, gateway_id, {"online": True, "heartbeat_at": now,
                                          "storage_full": beat.storage_full,
                                          "clock_offset_s": offset_s})  # fmt: skip
        contacts = schema.device_contacts
        conn.execute(contacts.delete().where(contacts.c.gateway_id == gateway_id))
        if beat.devices:
            conn.execute(
                contacts.insert(),
                [
                    {"gateway_id": gateway_id, "device_id": d.device_id,
                     "patient_id": d.patient_id, "kind": d.kind, "paired_at": d.paired_at,
                     "last_contact_at": d.last_contact_at, "reported_at": now}
                    for d in beat.devices
                ],
            )  # fmt: skip
    for gateway_id, events in sorted(updates.pairings.items()):
        if events:
            record_pairings(conn, gateway_id, events, at=now)
