"""Simulated devices on a virtual air, and a gateway wired to it, for the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.reading import Kind, device_id_for, reading_id_for
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.faults import Faults
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.models import get_model
from gateway.connections import Connector
from gateway.enrolment import HubIdentity, HubPatient, Identity, save_identity
from gateway.outbox import Backoff, Outbox
from gateway.registry import Registry
from gateway.samples import SampleStore
from gateway.service import Gateway, SessionTuning, SyncResult

PASSKEY = 246810


def utcnow() -> datetime:
    return datetime.now(UTC)


class ShiftedClock:
    """Real time plus a shift a test moves forward (to close stream minutes without waiting)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


def make_meter(
    air: VirtualAir,
    *,
    serial: str = "GM0000000001",
    address: str = "F1:00:00:00:00:01",
    model: str = "accu-chek-like",
    records: int = 0,
    faults: Faults | None = None,
    utc_offset_min: int = 0,
) -> GlucoseMeter:
    meter = GlucoseMeter(
        air,
        get_model(model),
        serial=serial,
        address=address,
        faults=faults,
        passkey=PASSKEY,
        utc_offset_min=utc_offset_min,
    )
    add_records(meter, records)
    return meter


def add_records(meter: GlucoseMeter, count: int, *, start_days_ago: float = 20.0) -> None:
    start = utcnow() - timedelta(days=start_days_ago)
    for i in range(count):
        meter.take_reading(90 + (i * 7) % 120, at_utc=start + timedelta(minutes=30 * i))


def make_cuff(
    air: VirtualAir,
    *,
    serial: str = "BP00000001",
    address: str = "F2:00:00:00:00:01",
    model: str = "omron-like",
    records: int = 0,
    faults: Faults | None = None,
) -> BloodPressureCuff:
    cuff = BloodPressureCuff(
        air, get_model(model), serial=serial, address=address, faults=faults, passkey=PASSKEY
    )
    start = utcnow() - timedelta(days=10)
    for i in range(records):
        stamp = (start + timedelta(hours=3 * i)).replace(tzinfo=None, microsecond=0)
        # encoded as the model's firmware does (Beurer-like cuffs with their byte quirks)
        cuff.store(
            cuff.encode(
                systolic_mmhg=120 + i % 30,
                diastolic_mmhg=80 + i % 10,
                pulse_per_min=70,
                user_id=1,
                body_movement=False,
                irregular_pulse=False,
                time_stamp=stamp,
            )
        )
    return cuff


def meter_ids(meter: GlucoseMeter) -> set[str]:
    """The reading ids the gateway must produce for every record in the meter's memory."""
    ident = meter.identity
    device_id = device_id_for(
        manufacturer=ident.manufacturer, model=ident.model, serial=ident.serial
    )
    out = set()
    for record in meter.racp.records:
        m = record.measurement
        assert m.base_time is not None
        out.add(
            reading_id_for(
                device_id=device_id,
                kind=Kind.GLUCOSE,
                sequence=m.sequence_number,
                device_time=m.base_time.isoformat(),
            )
        )
    return out


def cuff_ids(cuff: BloodPressureCuff) -> set[str]:
    ident = cuff.identity
    device_id = device_id_for(
        manufacturer=ident.manufacturer, model=ident.model, serial=ident.serial
    )
    out = set()
    for stored in cuff.memory:
        stamp = stored.measurement.time_stamp
        assert isinstance(stamp, datetime)
        out.add(
            reading_id_for(
                device_id=device_id,
                kind=Kind.BLOOD_PRESSURE,
                sequence=None,
                device_time=stamp.isoformat(),
            )
        )
    return out


@dataclass
class Hub:
    gateway: Gateway
    outbox: Outbox
    registry: Registry
    identity: HubIdentity  # enrolled for HUB_PATIENTS (what the pairing page offers)


# The patients the test hub is enrolled for: (patient id, short name the page shows).
HUB_PATIENTS = (("patient-1", "W. L."), ("patient-7", "Z. M."), ("patient-8", "L. F."))


def enrol_test_hub(data_dir: Path, gateway_id: str = "gw-test") -> HubIdentity:
    """Write the identity an enrolment would have left (no server involved)."""
    save_identity(
        data_dir,
        Identity(gateway_id, gateway_id, None, tuple(HubPatient(p, n) for p, n in HUB_PATIENTS)),
    )
    return HubIdentity(data_dir, None)


@asynccontextmanager
async def hub(
    air: VirtualAir,
    data_dir: Path,
    *,
    silence_timeout_s: float = 1.0,
    outbox_max_bytes: int | None = None,
    clock: Callable[[], datetime] = utcnow,
    sample_retention_s: float = 3600.0,
) -> AsyncIterator[Hub]:
    scanner, client = air.backends()
    outbox = Outbox(
        data_dir / "gateway.sqlite",
        backoff=Backoff(first_s=1, max_s=5),
        max_size_bytes=outbox_max_bytes,
    )
    registry = Registry(data_dir / "gateway.sqlite")
    connector = Connector(scanner, client, max_connections=4, attempts=2, connect_timeout_s=5)
    gateway = Gateway(
        gateway_id="gw-test",
        connector=connector,
        registry=registry,
        outbox=outbox,
        clock=clock,
        utc_offset_min=lambda _at: 0,
        tuning=SessionTuning(
            pace_s=0.0,
            operation_timeout_s=5.0,
            silence_timeout_s=silence_timeout_s,
            pair_stream_s=1.5,
        ),
        samples=SampleStore(data_dir / "gateway.sqlite", retention_s=sample_retention_s),
    )
    try:
        yield Hub(gateway, outbox, registry, enrol_test_hub(data_dir))
    finally:
        await gateway.stop_streams()
        await asyncio.sleep(0)
        assert gateway.samples is not None
        gateway.samples.close()
        registry.close()
        outbox.close()


async def sync_heard(
    gateway: Gateway,
    scan_s: float = 0.4,
    *,
    devices: int = 1,
    rounds: int = 10,
    meter_interval_s: float = 0.0,
) -> dict[str, SyncResult]:
    """Each due device's result from the first sync round that heard it, once `devices` of
    them were heard.

    A scan window can miss every advertisement of a device, as a real radio can (here: the
    test's event loop starved for the whole window on a loaded machine); a round that did not
    hear a device changes nothing for it, and the hub's loop simply scans again, as this does,
    up to `rounds` times. Never for stream devices (their rounds return nothing by design).
    """
    heard: dict[str, SyncResult] = {}
    for _ in range(rounds):
        results = await gateway.sync_round(scan_s, meter_interval_s=meter_interval_s)
        for device_id, result in results.items():
            heard.setdefault(device_id, result)
        if len(heard) >= devices:
            break
    return heard
