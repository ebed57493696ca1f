"""Blood-pressure cuff session: take what the cuff indicates on connect, dedupe re-sends.

Cuffs push their readings as Blood Pressure Measurement indications once the CCCD is written
(docs/device-profiles.md 2.5, quirk 11); the procedure is `IndicationSession`'s. A cuff two
people share reports a user index with each reading; `SessionParams.patients_by_user` says whose
it is, and a reading of a user nobody was assigned to is quarantined on the hub, never
attributed to the wrong patient.
"""

from __future__ import annotations

from datetime import datetime

from devices.codecs.blood_pressure_measurement import BloodPressureMeasurement
from devices.errors import ReadingValidationError
from devices.reading import Reading
from devices.sessions import build, gatt
from devices.sessions.episodic import IndicationSession


class BloodPressureSession(IndicationSession):
    """One connection's worth of cuff indications."""

    MEASUREMENT = gatt.BLOOD_PRESSURE_MEASUREMENT

    def _reading(self, data: bytes, received_at: datetime) -> Reading:
        assert self.device is not None
        m = BloodPressureMeasurement.from_bytes(data, profile=self.params.profile)
        patient_id = self.params.patient_for_user(m.user_id)
        if patient_id is None:  # a household cuff: whose reading is this? (kept, quarantined)
            raise ReadingValidationError(
                "context.user_id", f"user {m.user_id} of this cuff is not assigned to a patient"
            )
        return build.blood_pressure_reading(
            m,
            device=self.device,
            patient_id=patient_id,
            gateway_id=self.params.gateway_id,
            clock=self.clock,
            received_at=received_at,
            local_utc_offset_min=self.params.local_utc_offset_min,
        )
