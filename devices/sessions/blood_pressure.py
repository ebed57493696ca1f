"""Blood-pressure cuff session: take what the cuff indicates on connect, dedupe re-sends.

Cuffs push their readings as Blood Pressure Measurement indications once the CCCD is written
(docs/device-profiles.md 2.5, quirk 11); the procedure is `IndicationSession`'s.
"""

from __future__ import annotations

from datetime import datetime

from devices.codecs.blood_pressure_measurement import BloodPressureMeasurement
from devices.reading import Reading
from devices.sessions import build, gatt
from devices.sessions.episodic import IndicationSession


class BloodPressureSession(IndicationSession):
    """One connection's worth of cuff indications."""

    MEASUREMENT = gatt.BLOOD_PRESSURE_MEASUREMENT

    def _reading(self, data: bytes, received_at: datetime) -> Reading:
        assert self.device is not None
        m = BloodPressureMeasurement.from_bytes(data, profile=self.params.profile)
        return build.blood_pressure_reading(
            m,
            device=self.device,
            patient_id=self.params.patient_id,
            gateway_id=self.params.gateway_id,
            clock=self.clock,
            received_at=received_at,
            local_utc_offset_min=self.params.local_utc_offset_min,
        )
