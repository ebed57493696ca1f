"""Thermometer (HTS 1.0) and weight scale (WSS 1.0) sessions: episodic indicated readings.

Both indicate stored readings once the host subscribes, like a cuff (`IndicationSession`).
Temperature Measurement 0x2A1C: IEEE 11073 FLOAT in Celsius or Fahrenheit (converted to
Celsius, the original kept), optional Time Stamp and Temperature Type (kept as context
`temperature_site`). Weight Measurement 0x2A9D: 0.005 kg or 0.01 lb (converted to kg); 0xFFFF
"measurement unsuccessful" becomes no reading (the bytes are quarantined, named).
"""

from __future__ import annotations

from datetime import datetime

from devices.codecs.temperature_measurement import TemperatureMeasurement, TemperatureType
from devices.codecs.weight_measurement import WeightMeasurement
from devices.errors import ReadingValidationError
from devices.reading import ContextValue, Kind, OriginalValue, Reading, reading_id_for
from devices.sessions import gatt
from devices.sessions.build import checked, episodic_times, reported_offset
from devices.sessions.episodic import IndicationSession
from devices.special import Special


def _celsius(value: float | Special, fahrenheit: bool) -> float | Special:
    if isinstance(value, Special) or not fahrenheit:
        return value
    return round((value - 32.0) * 5.0 / 9.0, 2)


class _VitalSession(IndicationSession):
    """A reading from one indicated value, timed like a cuff's (`build.episodic_times`)."""

    def _build(  # noqa: PLR0917
        self,
        kind: Kind,
        values: dict[str, float | Special],
        original: tuple[OriginalValue, ...],
        time_stamp: object,
        received_at: datetime,
        context: dict[str, ContextValue],
    ) -> Reading:
        assert self.device is not None
        device_time, measured_at, flags = episodic_times(
            time_stamp, self.clock, received_at, self.params.local_utc_offset_min
        )
        offset_s, offset_flags = reported_offset(self.clock)
        reading = Reading(
            reading_id=reading_id_for(
                device_id=self.device.id, kind=kind, sequence=None, device_time=device_time
            ),
            patient_id=self.params.patient_id,
            gateway_id=self.params.gateway_id,
            device=self.device,
            kind=kind,
            measured_at=measured_at,
            received_at=received_at,
            values=values,
            device_time=device_time,
            clock_offset_s=offset_s,
            original=original,
            context=context,
            status=tuple(dict.fromkeys(flags + offset_flags)),
        )
        return checked(reading, received_at)


class ThermometerSession(_VitalSession):
    """Indicated body temperatures."""

    MEASUREMENT = gatt.TEMPERATURE_MEASUREMENT

    def _reading(self, data: bytes, received_at: datetime) -> Reading:
        m = TemperatureMeasurement.from_bytes(data)
        fahrenheit = m.unit != "Cel"
        context: dict[str, ContextValue] = {}
        if m.temperature_type is not None:
            site = m.temperature_type
            context["temperature_site"] = (
                site.name.lower() if isinstance(site, TemperatureType) else int(site)
            )
        value = m.temperature.value
        return self._build(
            Kind.BODY_TEMPERATURE,
            {"body_temperature_c": _celsius(value, fahrenheit)},
            (OriginalValue("temperature", value, "[degF]" if fahrenheit else "Cel"),),
            m.time_stamp,
            received_at,
            context,
        )


class WeightScaleSession(_VitalSession):
    """Indicated body weights."""

    MEASUREMENT = gatt.WEIGHT_MEASUREMENT

    def _reading(self, data: bytes, received_at: datetime) -> Reading:
        m = WeightMeasurement.from_bytes(data)
        kg = m.weight_kg
        if kg is None:
            raise ReadingValidationError("values.body_weight_kg", "measurement unsuccessful")
        unit = "[lb_av]" if m.imperial else "kg"
        raw = m.weight_raw * (0.01 if m.imperial else 0.005)
        context: dict[str, ContextValue] = {} if m.user_id is None else {"user_id": m.user_id}
        return self._build(
            Kind.BODY_WEIGHT,
            {"body_weight_kg": round(kg, 3)},
            (OriginalValue("weight", round(raw, 3), unit),),
            m.time_stamp,
            received_at,
            context,
        )
