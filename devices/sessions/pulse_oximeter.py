"""Pulse oximeter session (PLXS 1.0): continuous stream, spot-checks, stored spot-checks.

After the shared steps (bond, Device Information, clock), the hub subscribes to what the
oximeter has: PLX Continuous Measurement 0x2A5F (notify, about once a second while a finger is
in), PLX Spot-Check Measurement 0x2A5E (indicate) and the RACP. With a RACP it first asks for
every stored spot-check (`01 01`: PLXS servers need only support "all records"); the hub's
outbox drops those it already has by `reading_id` (device, time stamp), so nothing is stored
twice and nothing missed during a dropout is lost. Meanwhile and afterwards:

- each continuous notification becomes a `Sample` (`spo2_pct`, `pulse_per_min`), stored on the
  hub and summarized per minute like a heart-rate stream (`devices.sessions.summary`);
- each spot-check becomes a `spo2` reading of its own, committed as it arrives (an indication
  was already confirmed to the device); one without a time stamp gets the hub's local receive
  time, flagged `device_time_absent`.

A measurement whose SpO2 or pulse is a special value (NaN while the probe settles) is kept in
the record store as such, never turned into a number; continuous samples without a number are
not summarized. The session runs until the link drops, the oximeter falls silent for
`silence_timeout_s` (finger out, probe off), or `stream_s` has passed when the hub set one.
"""

from __future__ import annotations

from datetime import datetime

from devices.codecs.errors import DecodeError
from devices.codecs.plx_continuous_measurement import PlxContinuousMeasurement
from devices.codecs.plx_spot_check_measurement import PlxSpotCheckMeasurement
from devices.codecs.racp import OpCode, RecordAccessControlPoint, ResponseCode
from devices.errors import ReadingValidationError
from devices.reading import Kind, OriginalValue, Reading, reading_id_for
from devices.sessions import gatt
from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.build import checked, episodic_times, reported_offset
from devices.sessions.events import (
    DeviceCursor,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    RecordsReady,
    Sample,
    SamplesReady,
    Write,
    WriteDone,
)
from devices.special import Special


class PulseOximeterSession(BaseSession):
    """One connection's worth of oximetry (see the module docstring)."""

    SUBSCRIPTIONS = (
        gatt.PLX_CONTINUOUS_MEASUREMENT,
        gatt.PLX_SPOT_CHECK_MEASUREMENT,
        gatt.RECORD_ACCESS_CONTROL_POINT,
    )

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self._stream_until_s: float | None = None
        self._seen: set[str] = set()
        self.racp_done = False

    def _required_missing(self) -> list[str]:
        measurements = (gatt.PLX_CONTINUOUS_MEASUREMENT, gatt.PLX_SPOT_CHECK_MEASUREMENT)
        if any(self.inventory.has(u) for u in measurements):
            return []
        return list(measurements)

    def tick(self, at: Instant) -> list[Output]:
        """Past `stream_s` the session is complete; silence otherwise is a timeout."""
        if self._stream_until_s is not None and at.monotonic_s >= self._stream_until_s:
            return self._end(Outcome.COMPLETE, "", at)
        if self.racp_done and self.deadline_s is not None and at.monotonic_s >= self.deadline_s:
            continuous = self.inventory.has(gatt.PLX_CONTINUOUS_MEASUREMENT)
            outcome = Outcome.TIMEOUT if continuous else Outcome.COMPLETE
            return self._end(outcome, "", at)
        return super().tick(at)

    def _arm(self, at: Instant) -> None:
        silence = at.monotonic_s + self.params.silence_timeout_s
        until = self._stream_until_s
        self._deadline_s = silence if until is None else min(silence, until)

    def _begin_transfer(self, at: Instant) -> list[Output]:
        if self.params.stream_s is not None:
            self._stream_until_s = at.monotonic_s + self.params.stream_s
        if self.inventory.has(gatt.RECORD_ACCESS_CONTROL_POINT):
            self._count("racp_requests")
            report = bytes(RecordAccessControlPoint.report_all())
            return [self._command(Write(gatt.RECORD_ACCESS_CONTROL_POINT, report), at)]
        self.racp_done = True
        self._arm(at)
        return []

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)
        if isinstance(event, WriteDone):
            self._arm(at)
            return []
        if not isinstance(event, Notified):
            return []
        self._arm(at)
        if event.uuid == gatt.PLX_CONTINUOUS_MEASUREMENT:
            return self._on_continuous(event.data, at)
        if event.uuid == gatt.PLX_SPOT_CHECK_MEASUREMENT:
            return self._on_spot_check(event.data, at)
        if event.uuid == gatt.RECORD_ACCESS_CONTROL_POINT:
            return self._on_racp(event.data, at)
        return []

    def _quarantined(self, uuid: str, data: bytes, reason: str, at: Instant) -> list[Output]:
        self._quarantine(uuid, data, reason, at)
        ready = RecordsReady((), None, tuple(self.quarantined))
        self.quarantined = []
        return [ready]

    def _on_continuous(self, data: bytes, at: Instant) -> list[Output]:
        try:
            m = PlxContinuousMeasurement.from_bytes(data)
        except DecodeError as exc:
            return self._quarantined(gatt.PLX_CONTINUOUS_MEASUREMENT, data, str(exc), at)
        spo2, pulse = m.spo2_pct.value, m.pulse_rate_bpm.value
        if isinstance(spo2, Special):
            self._count("samples_without_value")
            return []
        values: list[tuple[str, float]] = [("spo2_pct", spo2)]
        if not isinstance(pulse, Special):
            values.append(("pulse_per_min", pulse))
        self._count("samples")
        return [SamplesReady(Kind.SPO2, (Sample(at.utc, tuple(values)),))]

    def _on_spot_check(self, data: bytes, at: Instant) -> list[Output]:
        try:
            reading = self._spot_check(PlxSpotCheckMeasurement.from_bytes(data), at.utc)
        except (DecodeError, ReadingValidationError) as exc:
            return self._quarantined(gatt.PLX_SPOT_CHECK_MEASUREMENT, data, str(exc), at)
        if reading.reading_id in self._seen:
            self._count("duplicates")
            return []
        self._seen.add(reading.reading_id)
        self._count("readings")
        return [RecordsReady((reading,), DeviceCursor(None, reading.device_time))]

    def _on_racp(self, data: bytes, at: Instant) -> list[Output]:
        try:
            response = RecordAccessControlPoint.from_bytes(data)
        except DecodeError as exc:
            return self._quarantined(gatt.RECORD_ACCESS_CONTROL_POINT, data, str(exc), at)
        if response.op_code != OpCode.RESPONSE_CODE:
            return self._quarantined(
                gatt.RECORD_ACCESS_CONTROL_POINT, data, "unexpected RACP op code", at
            )
        self.racp_done = True
        code = response.response_code
        if code not in (ResponseCode.SUCCESS, ResponseCode.NO_RECORDS_FOUND):
            self._count("racp_failed")
        if not self.inventory.has(gatt.PLX_CONTINUOUS_MEASUREMENT) and not self.params.stream_s:
            # A spot-check oximeter: the stored records were the transfer.
            return self._end(Outcome.COMPLETE, "", at)
        return []

    def _spot_check(self, m: PlxSpotCheckMeasurement, received_at: datetime) -> Reading:
        assert self.device is not None
        device_time, measured_at, flags = episodic_times(
            m.time_stamp, self.clock, received_at, self.params.local_utc_offset_min
        )
        if m.device_clock_not_set:
            flags.append("device_clock_not_set")
        offset_s, offset_flags = reported_offset(self.clock)
        values = {"spo2_pct": m.spo2_pct.value, "pulse_per_min": m.pulse_rate_bpm.value}
        reading = Reading(
            reading_id=reading_id_for(
                device_id=self.device.id, kind=Kind.SPO2, sequence=None, device_time=device_time
            ),
            patient_id=self.params.patient_id,
            gateway_id=self.params.gateway_id,
            device=self.device,
            kind=Kind.SPO2,
            measured_at=measured_at,
            received_at=received_at,
            values=values,
            device_time=device_time,
            clock_offset_s=offset_s,
            original=(
                OriginalValue("spo2", m.spo2_pct.value, "%"),
                OriginalValue("pulse_rate", m.pulse_rate_bpm.value, "1/min"),
            ),
            context={"measurement": "spot_check"},
            status=tuple(dict.fromkeys(flags + offset_flags)),
        )
        return checked(reading, received_at)
