"""The devices hubs report, in the record (adapter): the server's device registry.

A hub reports each pairing and unpairing as an event (`devices.wire.PairingEvent`, carried by
``hv.pairing/1``; ingest checks that the hub is enrolled and serves the event's patients, then
calls `record_pairings` in its batch transaction). Each event is kept once (the hub's event id:
a resent event changes nothing), brings the registry up to date (`hub_devices`: identity, kind,
paired and unpaired at; `hub_device_patients`: whose readings it gives, by cuff user) and is
audited in the same transaction: ``device.pair`` for each patient the device now serves,
``device.unpair`` for each patient it stopped serving (an unpairing, or a re-pairing to someone
else; the rule is `careteam.pairing`, pure). A hub sends its events in the order it made
them, never a newer one before an older one that is still unreceipted (`devices.wire`), so
they are applied in arrival order.

Readers: `devices_of_patient` (the FHIR Device view and the dashboard), `devices_of_gateway`,
`device_records` (one device across hubs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from careteam import audit_store
from careteam.audit import AuditRecord
from careteam.errors import NotFoundError
from careteam.pairing import Change, audit_changes, served
from careteam.tables import hub_device_events, hub_device_patients, hub_devices, patient_records
from devices.wire import PairingEvent


@dataclass(frozen=True, slots=True)
class HubDevice:
    """A device as its hub last reported it. `patients` are (patient id, cuff user index or
    None); `paired_at` and `unpaired_at` are the hub's times, `updated_at` the record's."""

    gateway_id: str
    device_id: str
    kind: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    paired_at: datetime
    unpaired_at: datetime | None
    updated_at: datetime
    patients: tuple[tuple[str, int | None], ...]

    @property
    def active(self) -> bool:
        """True while the device is paired to its hub."""
        return self.unpaired_at is None


def _audit(gateway_id: str, change: Change, event: PairingEvent) -> AuditRecord:
    return AuditRecord(
        actor_kind="gateway",
        actor_id=gateway_id,
        action=change.action,
        patient_id=change.patient_id,
        entity_kind="device",
        entity_id=event.device_id,
        source="mqtt",
        detail={
            "gateway_id": gateway_id,
            "kind": event.kind,
            "model": event.model,
            "user_index": change.user_index,
            "hub_event_id": event.event_id,
            "hub_at": event.at.isoformat(),
        },
    )


def _current_patients(
    conn: sa.Connection, gateway_id: str, device_id: str
) -> dict[str, int | None]:
    d, p = hub_devices.c, hub_device_patients.c
    rows = conn.execute(
        sa.select(p.patient_id, p.user_index)
        .join(hub_devices, sa.and_(d.gateway_id == p.gateway_id, d.device_id == p.device_id))
        .where(p.gateway_id == gateway_id, p.device_id == device_id, d.unpaired_at.is_(None))
    )
    return {str(r.patient_id): r.user_index for r in rows}


def _apply(
    conn: sa.Connection, gateway_id: str, event: PairingEvent, at: datetime
) -> list[AuditRecord]:
    d, p = hub_devices.c, hub_device_patients.c
    before = _current_patients(conn, gateway_id, event.device_id)
    now = served(event)
    pairing = event.action == "pair"
    values = {
        "kind": event.kind,
        "manufacturer": event.manufacturer,
        "model": event.model,
        "serial": event.serial,
        "firmware": event.firmware,
        "paired_at": event.paired_at,
        "unpaired_at": None if pairing else event.at,
        "updated_at": at,
    }
    key = sa.and_(d.gateway_id == gateway_id, d.device_id == event.device_id)
    if conn.execute(sa.select(d.device_id).where(key)).first() is None:
        conn.execute(
            hub_devices.insert().values(gateway_id=gateway_id, device_id=event.device_id, **values)
        )
    else:
        conn.execute(sa.update(hub_devices).where(key).values(**values))
    conn.execute(
        sa.delete(hub_device_patients).where(
            p.gateway_id == gateway_id, p.device_id == event.device_id
        )
    )
    conn.execute(
        hub_device_patients.insert(),
        [
            {"gateway_id": gateway_id, "device_id": event.device_id, "patient_id": patient,
             "user_index": user}
            for patient, user in now.items()
        ],
    )  # fmt: skip
    return [_audit(gateway_id, c, event) for c in audit_changes(event, before, now)]


def record_pairings(
    conn: sa.Connection, gateway_id: str, events: Sequence[PairingEvent], *, at: datetime
) -> tuple[str, ...]:
    """Record a hub's pairing events (in the order given) in the caller's transaction; returns
    the ids of the events that were new. The caller has checked that the hub may report them
    (enrolled, serving each event's patients).

    Raises:
        NotFoundError: an event names a patient the record does not have (``patient_id``);
            nothing was written.
        sqlalchemy.exc.SQLAlchemyError: a statement failed.
    """
    named = {pid for event in events for pid in event.patient_ids}
    r = patient_records.c
    known = set(conn.execute(sa.select(r.patient_id).where(r.patient_id.in_(named))).scalars())
    for pid in sorted(named - known):
        raise NotFoundError("patient_id", pid)
    e = hub_device_events.c
    new: list[str] = []
    records: list[AuditRecord] = []
    for event in events:
        seen = conn.execute(
            sa.select(e.id).where(e.gateway_id == gateway_id, e.event_id == event.event_id)
        ).first()
        if seen is not None or event.event_id in new:
            continue
        conn.execute(
            hub_device_events.insert().values(
                gateway_id=gateway_id,
                event_id=event.event_id,
                action=event.action,
                device_id=event.device_id,
                patient_ids=" ".join(event.patient_ids),
                at=event.at,
                received_at=at,
            )
        )
        records += _apply(conn, gateway_id, event, at)
        new.append(event.event_id)
    for record in records:  # last: the chain's lock is held from the first append to commit
        audit_store.append(conn, record, at)
    return tuple(new)


def _select() -> sa.Select[tuple[object, ...]]:
    d, p = hub_devices.c, hub_device_patients.c
    return (
        sa.select(hub_devices, p.patient_id, p.user_index)
        .join(
            hub_device_patients,
            sa.and_(p.gateway_id == d.gateway_id, p.device_id == d.device_id),
            isouter=True,
        )
        .order_by(d.paired_at, d.gateway_id, d.device_id, p.user_index, p.patient_id)
    )


def _devices(rows: Sequence[sa.Row[tuple[object, ...]]]) -> list[HubDevice]:
    found: dict[tuple[str, str], HubDevice] = {}
    for row in rows:
        m = row._mapping
        key = (str(m["gateway_id"]), str(m["device_id"]))
        current = found.get(key)
        patients = () if current is None else current.patients
        if m["patient_id"] is not None:
            patients += ((str(m["patient_id"]), m["user_index"]),)
        found[key] = HubDevice(
            key[0], key[1], str(m["kind"]), m["manufacturer"], m["model"], m["serial"],
            m["firmware"], m["paired_at"], m["unpaired_at"], m["updated_at"], patients,
        )  # fmt: skip
    return list(found.values())


def devices_of_patient(conn: sa.Connection, patient_id: str) -> list[HubDevice]:
    """The devices whose readings go (or, unpaired, went) to `patient_id`, in pairing order;
    each with all of its patients (a shared cuff names both)."""
    d, p = hub_devices.c, hub_device_patients.c
    mine = sa.select(p.gateway_id, p.device_id).where(p.patient_id == patient_id).subquery("mine")
    stmt = _select().join(
        mine, sa.and_(mine.c.gateway_id == d.gateway_id, mine.c.device_id == d.device_id)
    )
    return _devices(conn.execute(stmt).all())


def devices_of_gateway(conn: sa.Connection, gateway_id: str) -> list[HubDevice]:
    """The devices a hub reported, paired or not, in pairing order."""
    return _devices(conn.execute(_select().where(hub_devices.c.gateway_id == gateway_id)).all())


def device_records(conn: sa.Connection, device_id: str) -> list[HubDevice]:
    """One device as every hub that paired it reported it."""
    return _devices(conn.execute(_select().where(hub_devices.c.device_id == device_id)).all())
