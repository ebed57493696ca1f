"""Builders for engine tests: canonical readings written through ingest's real store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from devices.reading import DeviceInfo, Kind, Reading, Value, device_id_for, reading_id_for
from ingest.store import write_batch

NOW_STEP = timedelta(minutes=1)


def reading(
    patient_id: str,
    measured_at: datetime,
    sequence: int,
    *,
    glucose: Value | None = None,
    bp: tuple[float, float] | None = None,
    meal: str | None = None,
    status: Sequence[str] = (),
) -> Reading:
    """A glucose reading (`glucose`) or a cuff reading (`bp` = systolic, diastolic)."""
    kind = Kind.GLUCOSE if bp is None else Kind.BLOOD_PRESSURE
    serial = f"{patient_id}-{kind.value}"
    device_id = device_id_for(manufacturer="Acme", model="M1", serial=serial)
    device_time = measured_at.strftime("%Y-%m-%dT%H:%M:%S")
    values: Mapping[str, Value] = (
        {"glucose_mmol_l": glucose if glucose is not None else 5.5}
        if bp is None
        else {"systolic_mmhg": float(bp[0]), "diastolic_mmhg": float(bp[1]), "pulse_per_min": 70.0}
    )
    return Reading(
        reading_id=reading_id_for(
            device_id=device_id, kind=kind, sequence=sequence, device_time=device_time
        ),
        patient_id=patient_id,
        gateway_id="gw-1",
        device=DeviceInfo(device_id, "Acme", "M1", serial, "1.0"),
        kind=kind,
        measured_at=measured_at,
        received_at=measured_at + timedelta(seconds=30),
        values=values,
        sequence=sequence,
        device_time=device_time,
        context={"meal": meal} if meal else {},
        status=tuple(status),
    )


def store(engine: sa.Engine, readings: Sequence[Reading], now: datetime) -> None:
    """Commit readings through ingest's write path (the real record store)."""
    write_batch(engine, readings, [], now=now)
