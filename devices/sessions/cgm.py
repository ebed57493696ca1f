"""Continuous glucose monitor back-fill over the RACP (CGMS 1.0.1), as a sans-IO session.

A CGM stores a measurement every few minutes, each stamped with its Time Offset (minutes since
the sensor session started); the hub connects every sync interval and asks for what it missed:

1. The shared steps of `BaseSession` (bond, Device Information, clock if any), notifications on
   CGM Measurement 0x2AA7 and indications on the RACP.
2. Read CGM Feature 0x2AA8 (does every record carry an E2E-CRC?) and CGM Session Start Time
   0x2AAA (the sensor's local start time, time zone and DST: the base of every Time Offset).
3. With a cursor from the same sensor session (its start time as the cursor's device time):
   "report records with Time Offset >= last + 1" (`01 03 01 <offset>`, filter type 1 is the
   Time Offset in CGMS). Without one, or after a new sensor session started: "report all".
   "Operator / operand not supported" -> "all" with the filter applied here.
4. Each notification may carry several records (`CgmMeasurementNotification`). With E2E-CRC
   announced, a record without a CRC, or with a wrong one, is quarantined with its bytes.
5. The RACP response ends the procedure: Success -> the records and the new cursor (the last
   Time Offset) in one `RecordsReady`; "No records found" -> nothing new. A disconnect or
   silence keeps the records received so far, which are the oldest ones asked for (a CGM sends
   them in Time Offset order), with the cursor at the last of them: the next sync goes on from
   there.

`measured_at` is the session start in UTC plus the Time Offset; with the start, zone or DST
unknown it is the receive time, flagged `device_time_unknown`. Values: glucose in mmol/L
(mg/dL / 18.016), trend in mmol/L/min, quality in %, annunciation bits as status flags.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from devices.codecs.cgm_feature import CgmFeature
from devices.codecs.cgm_measurement import CgmMeasurement, CgmMeasurementNotification
from devices.codecs.cgm_session_start_time import CgmSessionStartTime
from devices.codecs.errors import DecodeError
from devices.codecs.racp import OpCode, RecordAccessControlPoint, ResponseCode
from devices.errors import ReadingValidationError
from devices.reading import DeviceInfo, Kind, OriginalValue, Reading, reading_id_for
from devices.sessions import gatt
from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.build import DEVICE_TIME_UNKNOWN, checked
from devices.sessions.events import (
    DeviceCursor,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    Read,
    ReadDone,
    RecordsReady,
    Write,
    WriteDone,
)
from devices.sessions.glucose import NOT_SUPPORTED
from devices.special import Special
from devices.units import MG_DL_PER_MMOL_L

# Sensor Status Annunciation bits (CGMS 1.0.1 3.1.2.3, as `sensor_status_annunciation` numbers
# them: status 0-7, cal/temp 8-15, warning 16-23) with the status flags they become.
ANNUNCIATION_FLAGS = {
    0: "session_stopped",
    1: "device_battery_low",
    2: "sensor_type_incorrect",
    3: "sensor_malfunction",
    5: "general_device_fault",
    8: "time_synchronization_required",
    11: "calibration_required",
    12: "sensor_temperature_high",
    13: "sensor_temperature_low",
    20: "rate_of_decrease_exceeded",
    21: "rate_of_increase_exceeded",
    22: "result_lower_than_device_can_process",
    23: "result_higher_than_device_can_process",
}
E2E_CRC_MISSING = "record without the E2E-CRC the sensor announces"


class CgmSession(BaseSession):
    """One connection's worth of CGM back-fill (see the module docstring)."""

    SUBSCRIPTIONS = (gatt.CGM_MEASUREMENT, gatt.RECORD_ACCESS_CONTROL_POINT)

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self._feature: CgmFeature | None = None
        self._start: CgmSessionStartTime | None = None
        self._all = False
        self._records: list[tuple[CgmMeasurement, datetime]] = []
        self._reads = [gatt.CGM_FEATURE, gatt.CGM_SESSION_START_TIME]

    # ----------------------------------------------------------------------------- requests

    def _begin_transfer(self, at: Instant) -> list[Output]:
        return self._next_read(at)

    def _next_read(self, at: Instant) -> list[Output]:
        while self._reads and not self.inventory.can(self._reads[0], "read"):
            self._reads.pop(0)
        if self._reads:
            return [self._command(Read(self._reads[0]), at)]
        return self._request(at)

    def _start_text(self) -> str | None:
        start = None if self._start is None else self._start.start
        return None if start is None else start.isoformat()

    def _after(self) -> int | None:
        """The Time Offset already stored for this sensor session, None to fetch all."""
        cursor = self.params.cursor
        if cursor is None or cursor.last_sequence is None or self._start_text() is None:
            return None
        return cursor.last_sequence if cursor.last_device_time == self._start_text() else None

    def _request(self, at: Instant) -> list[Output]:
        after = self._after()
        if after is None or self._all:
            request = RecordAccessControlPoint.report_all()
        elif after >= 0xFFFF:
            return self._end(Outcome.NOTHING_NEW, "", at)
        else:
            request = RecordAccessControlPoint.report(at_least=after + 1)
        self._count("racp_requests")
        return [self._command(Write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(request)), at)]

    # ----------------------------------------------------------------------------- inputs

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if (
            isinstance(event, ReadDone | OperationFailed)
            and self._reads
            and event.uuid == self._reads[0]
        ):
            self._reads.pop(0)
            if isinstance(event, ReadDone):
                self._on_read(event, at)
            return self._next_read(at)
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)
        if isinstance(event, WriteDone):
            self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
            return []
        if not isinstance(event, Notified):
            return []
        self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
        if event.uuid == gatt.CGM_MEASUREMENT:
            self._on_measurements(event.data, at)
            return []
        if event.uuid == gatt.RECORD_ACCESS_CONTROL_POINT:
            return self._on_racp(event.data, at)
        return []

    def _on_read(self, event: ReadDone, at: Instant) -> None:
        try:
            if event.uuid == gatt.CGM_FEATURE:
                self._feature = CgmFeature.from_bytes(event.data)
            else:
                self._start = CgmSessionStartTime.from_bytes(event.data)
        except DecodeError as exc:
            self._quarantine(event.uuid, event.data, str(exc), at)

    def _on_measurements(self, data: bytes, at: Instant) -> None:
        try:
            records = CgmMeasurementNotification.from_bytes(data).records
        except DecodeError as exc:
            self._quarantine(gatt.CGM_MEASUREMENT, data, str(exc), at)
            return
        needs_crc = self._feature is not None and self._feature.e2e_crc_supported
        if needs_crc and not all(r.with_e2e_crc for r in records):
            self._quarantine(gatt.CGM_MEASUREMENT, data, E2E_CRC_MISSING, at)
            return
        after = self._after()
        for record in records:
            if after is not None and record.time_offset_min <= after:
                continue  # "all" after a refused filter: filtered here
            if self._records and record.time_offset_min <= self._records[-1][0].time_offset_min:
                self._count("out_of_order")
                continue
            self._count("measurements")
            self._records.append((record, at.utc))

    def _on_racp(self, data: bytes, at: Instant) -> list[Output]:
        try:
            response = RecordAccessControlPoint.from_bytes(data)
        except DecodeError as exc:
            self._quarantine(gatt.RECORD_ACCESS_CONTROL_POINT, data, str(exc), at)
            return []
        if response.op_code != OpCode.RESPONSE_CODE or response.response_code is None:
            self._quarantine(gatt.RECORD_ACCESS_CONTROL_POINT, data, "unexpected RACP op code", at)
            return []
        code = response.response_code
        if code == ResponseCode.SUCCESS:
            return self._emit(Outcome.COMPLETE, "", at)
        if code == ResponseCode.NO_RECORDS_FOUND:
            return self._end(Outcome.NOTHING_NEW, "", at)
        if code in NOT_SUPPORTED and not self._all and self._after() is not None:
            self._all = True
            self._count("racp_fallback")
            return self._request(at)
        return self._emit(Outcome.DEVICE_ERROR, f"RACP response code {code:#04x}", at)

    # ----------------------------------------------------------------------------- completion

    def _end(
        self, outcome: Outcome, detail: str, at: Instant, *, disconnect: bool = True
    ) -> list[Output]:
        if self.transferring and self._records and outcome not in (Outcome.COMPLETE,):
            ready = self._ready(at)
            return [ready, *super()._end(outcome, detail, at, disconnect=disconnect)]
        return super()._end(outcome, detail, at, disconnect=disconnect)

    def _emit(self, outcome: Outcome, detail: str, at: Instant) -> list[Output]:
        if not self._records:
            empty = Outcome.NOTHING_NEW if outcome is Outcome.COMPLETE else outcome
            return super()._end(empty, detail, at)
        ready = self._ready(at)
        return [ready, *super()._end(outcome, detail, at)]

    def _ready(self, at: Instant) -> RecordsReady:
        assert self.device is not None
        readings: list[Reading] = []
        for record, received_at in self._records:
            try:
                readings.append(self._reading(record, self.device, received_at))
            except ReadingValidationError as exc:
                self._quarantine(gatt.CGM_MEASUREMENT, bytes(record), str(exc), at)
        last = self._records[-1][0].time_offset_min
        self._records = []
        self._count("readings", len(readings))
        ready = RecordsReady(
            tuple(readings), DeviceCursor(last, self._start_text()), tuple(self.quarantined)
        )
        self.quarantined = []
        return ready

    def _reading(self, m: CgmMeasurement, device: DeviceInfo, received_at: datetime) -> Reading:
        start = self._start
        offset = timedelta(minutes=m.time_offset_min)
        start_utc = None if start is None else start.start_utc
        device_time = None
        if start is not None and start.start is not None:
            device_time = (start.start + offset).isoformat()
        bits = m.sensor_status_annunciation
        status = [flag for bit, flag in ANNUNCIATION_FLAGS.items() if bits >> bit & 1]
        if start_utc is None:
            measured_at = received_at
            status.append(DEVICE_TIME_UNKNOWN)
        else:
            measured_at = start_utc + offset
        concentration = m.glucose_concentration_mg_dl.value
        values: dict[str, float | Special] = {"glucose_mmol_l": _mmol(concentration)}
        if m.trend_mg_dl_min is not None:
            values["glucose_trend_mmol_l_min"] = _mmol(m.trend_mg_dl_min.value, digits=3)
        if m.quality_pct is not None:
            values["sensor_quality_pct"] = m.quality_pct.value
        reading = Reading(
            reading_id=reading_id_for(
                device_id=device.id,
                kind=Kind.CGM_GLUCOSE,
                sequence=m.time_offset_min,
                device_time=device_time,
            ),
            patient_id=self.params.patient_id,
            gateway_id=self.params.gateway_id,
            device=device,
            kind=Kind.CGM_GLUCOSE,
            measured_at=measured_at,
            received_at=received_at,
            values=values,
            sequence=m.time_offset_min,
            device_time=device_time,
            original=(OriginalValue("glucose_concentration", concentration, "mg/dL"),),
            context={"sample_type": "interstitial_fluid"},
            status=tuple(dict.fromkeys(status)),
        )
        return checked(reading, received_at)


def _mmol(value: float | Special, *, digits: int = 2) -> float | Special:
    if isinstance(value, Special):
        return value
    return round(value / MG_DL_PER_MMOL_L, digits)
