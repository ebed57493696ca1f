"""The pairing registry: which device belongs to which patient, found at which address.

A device is identified by its Device Information (serial, or system id) through
`devices.device_id_for`, never by its BLE address, which can rotate; the address is only where
it was last seen. Rows live in the gateway's SQLite file (`gateway.db`), beside the outbox and
the per-device cursors.

Every pairing (a new or changed assignment) and unpairing is also written as a pairing event in
the same transaction, so the server's device registry and audit trail learn of each one: the
outbox forwards the events and keeps them until ingest's receipt names them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from devices.reading import DeviceInfo
from gateway import db
from gateway.errors import InvalidInputError, UnknownDeviceError

PATIENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
KINDS: Final = (
    "glucose",
    "blood_pressure",
    "heart_rate",
    "cgm_glucose",
    "body_temperature",
    "body_weight",
    "spo2",
)


@dataclass(frozen=True, slots=True)
class PairedDevice:
    """A device assigned to a patient on this hub."""

    device: DeviceInfo
    address: str
    kind: str
    patient_id: str
    paired_at: datetime
    name: str | None = None
    last_sync_at: datetime | None = None
    last_outcome: str | None = None
    # A cuff shared by a household: (device user index, patient); empty = all `patient_id`'s.
    user_patients: tuple[tuple[int, str], ...] = ()

    @property
    def device_id(self) -> str:
        """The stable device id (from Device Information)."""
        return self.device.id


def check_patient_id(patient_id: str) -> str:
    """Return `patient_id` if it is a valid identifier.

    Raises:
        InvalidInputError: field `patient_id`, when it is not 1-64 of A-Z a-z 0-9 . _ : -.
    """
    if not PATIENT_ID_RE.fullmatch(patient_id):
        raise InvalidInputError("patient_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    return patient_id


def check_user_patients(users: Mapping[int, str] | None) -> tuple[tuple[int, str], ...]:
    """Validate a cuff's user index -> patient map (indexes 1 to 254, as the cuff reports).

    Raises:
        InvalidInputError: field `user_patients`.
    """
    if not users:
        return ()
    for index, patient_id in users.items():
        if not 1 <= index <= 254:
            raise InvalidInputError("user_patients", f"user index {index} is not 1 to 254")
        check_patient_id(patient_id)
    return tuple(sorted(users.items()))


def _users_json(paired: PairedDevice) -> str | None:
    return json.dumps(paired.user_patients) if paired.user_patients else None


def _log_event(conn: sqlite3.Connection, action: str, paired: PairedDevice, at: datetime) -> None:
    d = paired.device
    conn.execute(
        "INSERT INTO pairing_events (event_id, action, device_id, kind, patient_id, users,"
        " manufacturer, model, serial, firmware, paired_at_s, at_s)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, action, d.id, paired.kind, paired.patient_id, _users_json(paired),
         d.manufacturer, d.model, d.serial, d.firmware, paired.paired_at.timestamp(),
         at.timestamp()),
    )  # fmt: skip


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class Registry:
    """Paired devices in the gateway database (thread-safe)."""

    def __init__(self, path: Path) -> None:
        """Open the registry in the gateway database at `path`.

        Raises:
            sqlite3.Error: the file cannot be opened.
        """
        self._conn = db.connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def add(self, paired: PairedDevice) -> None:
        """Insert or replace a device's assignment, with its pairing event.

        Raises:
            InvalidInputError: bad `patient_id`, `user_patients` or `kind`.
            sqlite3.Error: nothing was written.
        """
        check_patient_id(paired.patient_id)
        check_user_patients(dict(paired.user_patients))
        if paired.kind not in KINDS:
            raise InvalidInputError("kind", f"must be one of {KINDS}")
        d = paired.device
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO devices (device_id, address, name, kind, patient_id,"
                " manufacturer, model, serial, firmware, paired_at_s, last_sync_at_s,"
                " last_outcome, users) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.id,
                    paired.address,
                    paired.name,
                    paired.kind,
                    paired.patient_id,
                    d.manufacturer,
                    d.model,
                    d.serial,
                    d.firmware,
                    paired.paired_at.timestamp(),
                    None if paired.last_sync_at is None else paired.last_sync_at.timestamp(),
                    paired.last_outcome,
                    _users_json(paired),
                ),
            )
            _log_event(self._conn, "pair", paired, paired.paired_at)

    def all(self) -> list[PairedDevice]:
        """Every paired device, in pairing order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT device_id, address, name, kind, patient_id, manufacturer, model, serial,"
                " firmware, paired_at_s, last_sync_at_s, last_outcome, users FROM devices"
                " ORDER BY paired_at_s, device_id"
            ).fetchall()
        return [
            PairedDevice(
                device=DeviceInfo(r[0], r[5], r[6], r[7], r[8]),
                address=r[1],
                name=r[2],
                kind=r[3],
                patient_id=r[4],
                paired_at=datetime.fromtimestamp(r[9], UTC),
                last_sync_at=_ts(r[10]),
                last_outcome=r[11],
                user_patients=tuple((int(i), str(p)) for i, p in json.loads(r[12] or "[]")),
            )
            for r in rows
        ]

    def get(self, device_id: str) -> PairedDevice:
        """The device with this id.

        Raises:
            UnknownDeviceError: not paired.
        """
        for paired in self.all():
            if paired.device_id == device_id:
                return paired
        raise UnknownDeviceError(device_id)

    def by_address(self, address: str) -> PairedDevice | None:
        """The device last seen at `address`, if any."""
        wanted = address.upper()
        return next((p for p in self.all() if p.address.upper() == wanted), None)

    def remove(self, device_id: str, at: datetime) -> PairedDevice:
        """Remove the assignment, with its unpairing event at `at` (the outbox keeps the
        device's cursor and readings).

        Raises:
            UnknownDeviceError: not paired.
            sqlite3.Error: nothing was removed.
        """
        paired = self.get(device_id)
        with self._lock, db.transaction(self._conn):
            gone = self._conn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,))
            if gone.rowcount:
                _log_event(self._conn, "unpair", paired, at)
        return paired

    def record_sync(self, device_id: str, at: datetime, outcome: str, address: str | None) -> None:
        """Note a session's end (and the address the device answered at)."""
        with self._lock:
            self._conn.execute(
                "UPDATE devices SET last_sync_at_s = ?, last_outcome = ?,"
                " address = coalesce(?, address) WHERE device_id = ?",
                (at.timestamp(), outcome, address, device_id),
            )
