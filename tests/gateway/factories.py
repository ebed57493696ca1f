"""Canonical readings for gateway tests, built the way a session builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devices.reading import DeviceInfo, Kind, OriginalValue, Reading, device_id_for, reading_id_for

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def meter(serial: str = "MTR-0001") -> DeviceInfo:
    return DeviceInfo(
        id=device_id_for(manufacturer="Acme", model="GM-1", serial=serial),
        manufacturer="Acme",
        model="GM-1",
        serial=serial,
    )


def glucose(seq: int, device: DeviceInfo | None = None, gateway_id: str = "gw-test") -> Reading:
    device = device or meter()
    measured = T0 + timedelta(minutes=seq)
    device_time = measured.replace(tzinfo=None).isoformat()
    mmol = 5.0 + (seq % 40) / 10
    return Reading(
        reading_id=reading_id_for(
            device_id=device.id, kind=Kind.GLUCOSE, sequence=seq, device_time=device_time
        ),
        patient_id="patient-1",
        gateway_id=gateway_id,
        device=device,
        kind=Kind.GLUCOSE,
        measured_at=measured,
        received_at=T0 + timedelta(days=1),
        values={"glucose_mmol_l": mmol},
        sequence=seq,
        device_time=device_time,
        device_time_offset_min=0,
        clock_offset_s=0.0,
        original=(OriginalValue("glucose", mmol / 1000, "mol/L"),),
    )
