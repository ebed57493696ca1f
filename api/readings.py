"""Reads of stored readings and devices for the FHIR views (adapter over ingest's tables and
the care-team record's device registry, `careteam.device_store`).

Rows become `devices.Reading` again (IEEE 11073 specials from the value document as `Special`,
times as aware UTC), so the Observation mapping works on the same value the gateway built.
Observation pages are keyed on (measured_at, readings.id, view index), newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from api.fhir.ids import gateway_device_id
from api.fhir.observation import (
    VIEWS,
    ObservationView,
    to_observation,
    views_for,
)
from api.fhir.resources import DeviceRecord
from careteam import device_store
from careteam.tables import hub_devices
from devices.reading import DeviceInfo, Kind, OriginalValue, Reading, Value
from devices.special import Special
from ingest import schema

_BATCH = 200


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _value(raw: object) -> Value:
    if isinstance(raw, str):
        return Special(raw)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise ValueError("a stored value is neither a number nor a special value")


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading with its place in the record store."""

    row_id: int
    reading: Reading
    stored_at: datetime


def _reading(row: sa.Row[tuple[object, ...]]) -> StoredReading:
    m = row._mapping
    values = m["values"]
    original = m["original"]
    context = m["context"]
    status = m["status"]
    assert isinstance(values, dict) and isinstance(original, list)
    assert isinstance(context, dict) and isinstance(status, list)
    reading = Reading(
        reading_id=str(m["reading_id"]),
        patient_id=str(m["patient_id"]),
        gateway_id=str(m["gateway_id"]),
        device=DeviceInfo(
            id=str(m["device_id"]),
            manufacturer=m["manufacturer"],
            model=m["model"],
            serial=m["serial"],
            firmware=m["firmware"],
        ),
        kind=Kind(m["kind"]),
        measured_at=_utc(m["measured_at"]),
        received_at=_utc(m["received_at"]),
        values={str(k): _value(v) for k, v in values.items()},
        sequence=m["sequence"],
        device_time=m["device_time"],
        device_time_offset_min=m["device_time_offset_min"],
        clock_offset_s=m["clock_offset_s"],
        original=tuple(
            OriginalValue(str(o["name"]), _value(o["value"]), str(o["unit"])) for o in original
        ),
        context=dict(context),
        status=tuple(str(s) for s in status),
    )
    return StoredReading(int(m["id"]), reading, _utc(m["stored_at"]))


def _select() -> sa.Select[tuple[object, ...]]:
    r, d = schema.readings.c, schema.devices.c
    return sa.select(schema.readings, d.manufacturer, d.model, d.serial, d.firmware).select_from(
        schema.readings.outerjoin(schema.devices, d.device_id == r.device_id)
    )


def reading_by_id(conn: sa.Connection, reading_id: str) -> StoredReading | None:
    """The stored reading with that id, or None."""
    row = conn.execute(_select().where(schema.readings.c.reading_id == reading_id)).first()
    return _reading(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class ObservationPage:
    """A page of Observations and the position after its last one (None: no more)."""

    observations: list[dict[str, object]]
    patient_ids: frozenset[str]
    next_cursor: tuple[str, int, int] | None


def _expand(
    stored: StoredReading, views: Sequence[ObservationView]
) -> Iterator[tuple[int, dict[str, object]]]:
    wanted = {id(v) for v in views}
    for index, view in enumerate(views_for(stored.reading.kind)):
        if id(view) not in wanted:
            continue
        obs = to_observation(stored.reading, view, stored_at=stored.stored_at)
        if obs is not None:
            yield index, obs


def search_observations(
    conn: sa.Connection,
    *,
    scope: Mapping[str, frozenset[str]],
    views: Sequence[ObservationView],
    date_from: datetime | None,
    date_to: datetime | None,
    count: int,
    cursor: tuple[str, int, int] | None,
) -> ObservationPage:
    """One page of Observations of `views`, newest first.

    `scope` maps each patient to the reading kinds the caller may see of them.
    """
    r = schema.readings.c
    wanted = {v.kind.value for v in views}
    clauses = [
        sa.and_(r.patient_id == patient_id, r.kind.in_(sorted(kinds & wanted)))
        for patient_id, kinds in sorted(scope.items())
        if kinds & wanted
    ]
    if not clauses:
        return ObservationPage([], frozenset(), None)
    base = _select().where(sa.or_(*clauses))
    if date_from is not None:
        base = base.where(r.measured_at >= date_from)
    if date_to is not None:
        base = base.where(r.measured_at < date_to)
    base = base.order_by(r.measured_at.desc(), r.id.desc())
    out: list[dict[str, object]] = []
    patients: set[str] = set()
    position = cursor
    last: tuple[str, int, int] | None = None
    while True:
        stmt = base
        if position is not None:
            at = datetime.fromisoformat(position[0])
            stmt = stmt.where(
                sa.or_(r.measured_at < at, sa.and_(r.measured_at == at, r.id <= position[1]))
            )
        rows = conn.execute(stmt.limit(_BATCH)).all()
        for row in rows:
            stored = _reading(row)
            key_at = stored.reading.measured_at.isoformat()
            for index, obs in _expand(stored, views):
                if (
                    position is not None
                    and (key_at, stored.row_id) == (position[0], position[1])
                    and index <= position[2]
                ):
                    continue
                if len(out) == count:
                    return ObservationPage(out, frozenset(patients), last)
                out.append(obs)
                patients.add(stored.reading.patient_id)
                last = (key_at, stored.row_id, index)
        if len(rows) < _BATCH:
            return ObservationPage(out, frozenset(patients), None)
        final = _reading(rows[-1])
        # every view of the batch's last row was consumed: the next batch starts after it
        position = (final.reading.measured_at.isoformat(), final.row_id, len(VIEWS))


def devices_of(conn: sa.Connection, patient_id: str) -> list[DeviceRecord]:
    """A patient's meters, cuffs and wearables: those their hubs reported pairing (active while
    paired, with the hub as parent) and those that sent their readings, with the kinds measured.
    """
    r, d = schema.readings.c, schema.devices.c
    rows = conn.execute(
        sa.select(r.device_id, r.kind)
        .where(r.patient_id == patient_id)
        .group_by(r.device_id, r.kind)
        .order_by(r.device_id, r.kind)
    ).all()
    kinds: dict[str, list[str]] = {}
    for device_id, kind in rows:
        kinds.setdefault(str(device_id), []).append(str(kind))
    paired = {h.device_id: h for h in device_store.devices_of_patient(conn, patient_id)}
    for device_id, hub_device in paired.items():  # the latest report of each device wins
        kinds.setdefault(device_id, [])
        if hub_device.kind not in kinds[device_id]:
            kinds[device_id].insert(0, hub_device.kind)
    if not kinds:
        return []
    info = {
        row.device_id: row
        for row in conn.execute(sa.select(schema.devices).where(d.device_id.in_(list(kinds))))
    }
    out = []
    for device_id in sorted(kinds):
        row = info.get(device_id)
        reported = paired.get(device_id)
        source = reported if reported is not None else row
        out.append(
            DeviceRecord(
                device_id=device_id,
                manufacturer=source.manufacturer if source is not None else None,
                model=source.model if source is not None else None,
                serial=source.serial if source is not None else None,
                firmware=source.firmware if source is not None else None,
                patient_id=patient_id,
                kinds=tuple(kinds[device_id]),
                active=reported is None or reported.active,
                gateway_id=None if reported is None else reported.gateway_id,
            )
        )
    return out


def gateways_of(conn: sa.Connection, patient_id: str) -> list[str]:
    """The gateways that forwarded readings of a patient or reported one of their devices."""
    r = schema.readings.c
    rows = conn.execute(sa.select(r.gateway_id).where(r.patient_id == patient_id).distinct())
    found = {str(g) for (g,) in rows}
    found |= {h.gateway_id for h in device_store.devices_of_patient(conn, patient_id)}
    return sorted(found)


def device_patients(conn: sa.Connection, device_id: str) -> list[str]:
    """The patients a device (or, by gateway id, a gateway) sent readings of, or its hub
    reported it serves, by id."""
    r = schema.readings.c
    rows = conn.execute(
        sa.select(r.patient_id)
        .where(sa.or_(r.device_id == device_id, r.gateway_id == device_id))
        .distinct()
    )
    found = {str(p) for (p,) in rows}
    for hub_device in device_store.device_records(conn, device_id):
        found |= {patient for patient, _ in hub_device.patients}
    for hub_device in device_store.devices_of_gateway(conn, device_id):
        found |= {patient for patient, _ in hub_device.patients}
    return sorted(found)


def gateway_by_device_id(
    conn: sa.Connection, fhir_id: str, candidates: Iterable[str]
) -> str | None:
    """The gateway id among `candidates` whose Device id is `fhir_id`."""
    return next((g for g in candidates if gateway_device_id(g) == fhir_id), None)


def all_gateways(conn: sa.Connection) -> list[str]:
    """Every gateway that forwarded a reading or reported a device."""
    r, h = schema.readings.c, hub_devices.c
    found = {str(g) for (g,) in conn.execute(sa.select(r.gateway_id).distinct())}
    found |= {str(g) for (g,) in conn.execute(sa.select(h.gateway_id).distinct())}
    return sorted(found)
