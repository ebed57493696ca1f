"""Glucose record transfer over the Record Access Control Point (GLS), as a sans-IO session.

Procedure (docs/device-profiles.md 2.4 and quirks 13-21; docs/reliability.md):

1. The shared steps of `BaseSession`: bond, Device Information, clock, then notifications on
   Glucose Measurement and Glucose Measurement Context (when the meter has it) and indications
   on the RACP.
2. Without a cursor: "report all records" (`01 01`). With one, the half of the 16-bit
   sequence space after it: "report stored records within last+1 ..
   last+32768" (`01 04 01 <lo> <hi>`, inclusive) while that half does not cross 65535; ">=
   last+1" (`01 03 01 <seq>`; operator 3 is inclusive, quirk 18) when it does; "within 0 ..
   32767" when the cursor is 65535; and "within 0 .. last-32768" when ">= last+1" found nothing
   and the meter's last record lies in the wrapped part of the half (a wrap, not a reset). A
   range leaves out what a wrapped meter still holds from before the wrap (65530.. after a
   cursor at 3), so a meter that wraps and drops the link after a few records still spends
   each connection on new records. A meter that refuses the range operator gets ">= last+1"
   (a range that did not wrap) or "all records" (one that did).
3. Measurements are matched to their Context by sequence number; a measurement whose "context
   follows" flag is set waits for it, and goes out flagged `context_missing` if the next
   measurement or the end of the procedure arrives first. Meters without 0x2A34 are fine.
4. The RACP response ends the procedure: Success -> the records and the new cursor are emitted
   together in one `RecordsReady` (stored in one transaction by the gateway). "No records
   found" -> the meter is asked for its last record (`01 06`), which tells a meter that has
   nothing new from one whose sequence numbers were reset below the cursor, or wrapped past it.
   "Operator / operand not supported" -> fall back to "all records" and filter on the client.
5. When fetching everything after a cursor (fallback, reset, wrap), records are kept from just
   after the cursor's record (same sequence *and* device time) in delivery order; when that
   record is not on the meter any more (reset, memory wrapped), all are kept and the gateway's
   `reading_id` dedupe drops those already stored.
6. Disconnect, silence past `silence_timeout_s`, "procedure not completed" or any other early
   end keeps what is complete of the partial transfer, so a meter that drops the link after N
   records on every connection still gets through (`_unbroken_run`): a measurement with its
   context, or alone when its flag promised none, the meter has no 0x2A34, or the next
   measurement came first. A measurement still waiting for its context is dropped. Of those,
   the unbroken run of sequence numbers from the first one asked for (cursor + 1; the first
   delivered one without a cursor) is emitted with the cursor at its last record, never past a
   gap, so the next session asks for last + 1. When fetching everything after a cursor
   (fallback, reset, wrap), the run starts after the cursor's record and is empty if that
   record did not come. RACP "delete stored records" is never sent: the meter's memory is the
   last copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, auto

from devices.codecs.date_time import device_time_text
from devices.codecs.errors import DecodeError
from devices.codecs.glucose_measurement import GlucoseMeasurement
from devices.codecs.glucose_measurement_context import GlucoseMeasurementContext
from devices.codecs.racp import OpCode, RecordAccessControlPoint, ResponseCode
from devices.errors import ReadingValidationError
from devices.reading import Reading
from devices.sessions import build, gatt
from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.events import (
    DeviceCursor,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    RecordsReady,
    Write,
    WriteDone,
)

SEQUENCE_MAX = 0xFFFF
# GLS 1.0.1 section 1.6, Attribute Protocol Application Error codes of a RACP write.
PROCEDURE_ALREADY_IN_PROGRESS = 0x80
CCCD_IMPROPERLY_CONFIGURED = 0x81
# Answers meaning "this meter cannot do that filter": fall back to all records (quirk 19).
NOT_SUPPORTED = frozenset(
    {
        ResponseCode.INVALID_OPERATOR,
        ResponseCode.OPERATOR_NOT_SUPPORTED,
        ResponseCode.INVALID_OPERAND,
        ResponseCode.OPERAND_NOT_SUPPORTED,
    }
)


class _Mode(Enum):
    FILTERED = auto()  # >= last+1
    RANGE = auto()  # within 0..hi, after a wrap past the cursor
    PROBE_LAST = auto()  # last record only: reset and wrap detection when nothing new
    ALL = auto()


HALF_SPACE = 0x8000  # sequence numbers up to this far after the cursor count as "after" it


def range_after(cursor_sequence: int) -> tuple[int, int] | None:
    """The range to ask for after `cursor_sequence`: the half of the sequence space after it,
    or None when that half crosses 65535 (">= cursor+1" then asks for the part up to 65535)."""
    if cursor_sequence == SEQUENCE_MAX:
        return 0, HALF_SPACE - 1
    if cursor_sequence + HALF_SPACE <= SEQUENCE_MAX:
        return cursor_sequence + 1, cursor_sequence + HALF_SPACE
    return None


def wrapped_range(cursor_sequence: int, last_sequence: int | None) -> tuple[int, int] | None:
    """The range 0..hi to ask for when the meter's numbers wrapped past the cursor, or None.

    The half of the 16-bit sequence space after the cursor, from 0 (its part past 65535):
    with the cursor at 65535 always (the next record is 0); otherwise only when the meter's
    `last_sequence` (below the cursor: ">= cursor+1" found nothing) still lies in that half,
    which tells a wrap from a reset to 0.
    """
    hi = (cursor_sequence + HALF_SPACE) & SEQUENCE_MAX
    if cursor_sequence == SEQUENCE_MAX:
        return 0, hi
    if last_sequence is None or cursor_sequence < HALF_SPACE - 1:
        return None  # the half after the cursor does not wrap: ">= cursor+1" covered it
    return (0, hi) if last_sequence <= hi else None


@dataclass(frozen=True, slots=True)
class _Record:
    measurement: GlucoseMeasurement
    raw: bytes
    context: GlucoseMeasurementContext | None
    context_missing: bool
    received_at: datetime

    @property
    def key(self) -> tuple[int, str | None]:
        return self.measurement.sequence_number, device_time_text(self.measurement.base_time)


def _unbroken_run(records: Sequence[_Record], first: int) -> list[_Record]:
    """The records whose sequence numbers run without a gap from `first` (+1 modulo 2^16,
    quirk 17), in sequence order; records with the same number stay in delivery order."""
    by_sequence: dict[int, list[_Record]] = {}
    for record in records:
        by_sequence.setdefault(record.measurement.sequence_number, []).append(record)
    run: list[_Record] = []
    sequence = first
    while sequence in by_sequence:
        run.extend(by_sequence.pop(sequence))
        sequence = (sequence + 1) & SEQUENCE_MAX
    return run


class GlucoseSession(BaseSession):
    """One connection's worth of glucose record transfer (see the module docstring)."""

    SUBSCRIPTIONS = (
        gatt.GLUCOSE_MEASUREMENT,
        gatt.GLUCOSE_MEASUREMENT_CONTEXT,
        gatt.RECORD_ACCESS_CONTROL_POINT,
    )

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self._mode = _Mode.FILTERED
        self._records: list[_Record] = []
        self._seen: set[tuple[int, str | None]] = set()
        self._pending: tuple[GlucoseMeasurement, bytes, datetime] | None = None
        self._fallback = False
        self._range: tuple[int, int] = (0, 0)
        self._tried_range = False  # asked once per session: no RANGE/PROBE_LAST loop
        self._recovered: set[int] = set()  # RACP write errors already recovered from once
        self._aborting = False

    def _required_missing(self) -> list[str]:
        required = (gatt.GLUCOSE_MEASUREMENT, gatt.RECORD_ACCESS_CONTROL_POINT)
        return [u for u in required if not self.inventory.has(u)]

    # ----------------------------------------------------------------------------- requests

    def _begin_transfer(self, at: Instant) -> list[Output]:
        cursor = self.params.cursor
        if cursor is None or cursor.last_sequence is None:
            return self._request(_Mode.ALL, at)
        half = range_after(cursor.last_sequence)
        if half is None:
            return self._request(_Mode.FILTERED, at)
        if cursor.last_sequence == SEQUENCE_MAX:
            self._count("sequence_wrap")
        self._range = half
        return self._request(_Mode.RANGE, at)

    def _request(self, mode: _Mode, at: Instant) -> list[Output]:
        self._mode = mode
        self._flush_pending()
        self._records.clear()
        self._seen.clear()
        if mode is _Mode.FILTERED:
            assert self.params.cursor is not None and self.params.cursor.last_sequence is not None
            request = RecordAccessControlPoint.report(at_least=self.params.cursor.last_sequence + 1)
        elif mode is _Mode.RANGE:
            self._tried_range = True
            low, high = self._range
            request = RecordAccessControlPoint.filtered(
                OpCode.REPORT_STORED_RECORDS, at_least=low, at_most=high
            )
        elif mode is _Mode.PROBE_LAST:
            request = RecordAccessControlPoint.report_last()
        else:
            request = RecordAccessControlPoint.report_all()
        data = bytes(request)
        self._count("racp_requests")
        return [self._command(Write(gatt.RECORD_ACCESS_CONTROL_POINT, data), at)]

    # ----------------------------------------------------------------------------- inputs

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, WriteDone):
            self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
            return []
        if isinstance(event, OperationFailed):
            return self._on_write_failed(event, at)
        if not isinstance(event, Notified):
            return []
        self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
        if event.uuid == gatt.GLUCOSE_MEASUREMENT:
            return self._on_measurement(event.data, at)
        if event.uuid == gatt.GLUCOSE_MEASUREMENT_CONTEXT:
            self._on_context(event.data, at)
            return []
        if event.uuid == gatt.RECORD_ACCESS_CONTROL_POINT:
            return self._on_racp(event.data, at)
        return []

    def _on_write_failed(self, event: OperationFailed, at: Instant) -> list[Output]:
        """A RACP write refused with a GLS error is recovered from once: "procedure already in
        progress" (0x80) -> abort it, then ask again; "CCCD improperly configured" (0x81: the
        meter lost our notification or indication setting) -> subscribe again, then ask again."""
        code = event.att_error
        racp = event.uuid == gatt.RECORD_ACCESS_CONTROL_POINT
        if racp and code not in self._recovered:
            if code == PROCEDURE_ALREADY_IN_PROGRESS:
                self._recovered.add(code)
                self._count("racp_busy")
                self._aborting = True
                abort = bytes(RecordAccessControlPoint.abort())
                return [self._command(Write(gatt.RECORD_ACCESS_CONTROL_POINT, abort), at)]
            if code == CCCD_IMPROPERLY_CONFIGURED:
                self._recovered.add(code)
                self._count("racp_resubscribe")
                return self._subscribe(at)
        return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)

    def _on_measurement(self, data: bytes, at: Instant) -> list[Output]:
        self._flush_pending()
        try:
            m = GlucoseMeasurement.from_bytes(data, profile=self.params.profile)
        except DecodeError as exc:
            self._quarantine(gatt.GLUCOSE_MEASUREMENT, data, str(exc), at)
            return []
        self._count("measurements")
        has_context = self.inventory.has(gatt.GLUCOSE_MEASUREMENT_CONTEXT)
        if m.context_follows and has_context:
            self._pending = (m, bytes(data), at.utc)
        else:
            self._add(_Record(m, bytes(data), None, False, at.utc))
        return []

    def _on_context(self, data: bytes, at: Instant) -> None:
        try:
            ctx = GlucoseMeasurementContext.from_bytes(data, profile=self.params.profile)
        except DecodeError as exc:
            self._quarantine(gatt.GLUCOSE_MEASUREMENT_CONTEXT, data, str(exc), at)
            return
        pending = self._pending
        if pending is None or pending[0].sequence_number != ctx.sequence_number:
            reason = f"context for sequence {ctx.sequence_number} without its measurement"
            self._quarantine(gatt.GLUCOSE_MEASUREMENT_CONTEXT, data, reason, at)
            return
        self._pending = None
        self._add(_Record(pending[0], pending[1], ctx, False, pending[2]))

    def _flush_pending(self) -> None:
        if self._pending is not None:
            m, raw, received = self._pending
            self._pending = None
            self._count("context_missing")
            self._add(_Record(m, raw, None, True, received))

    def _add(self, record: _Record) -> None:
        if record.key in self._seen:
            self._count("duplicates")  # Tidepool ff35ec1: meters re-send a record
            return
        self._seen.add(record.key)
        self._records.append(record)

    def _on_racp(self, data: bytes, at: Instant) -> list[Output]:
        try:
            response = RecordAccessControlPoint.from_bytes(data)
        except DecodeError as exc:
            self._quarantine(gatt.RECORD_ACCESS_CONTROL_POINT, data, str(exc), at)
            return []
        if response.op_code != OpCode.RESPONSE_CODE or response.response_code is None:
            # Unknown or vendor op codes (Omron 0x11) are kept, not fatal (quirk 21).
            self._quarantine(gatt.RECORD_ACCESS_CONTROL_POINT, data, "unexpected RACP op code", at)
            return []
        code = response.response_code
        if self._aborting and response.request_op_code == OpCode.ABORT_OPERATION:
            self._aborting = False  # the stale procedure is over (whatever it says): ask again
            return self._request(self._mode, at)
        if code == ResponseCode.SUCCESS:
            self._flush_pending()  # the procedure is over: no context will follow
            return self._complete(at)
        if code == ResponseCode.NO_RECORDS_FOUND:
            if self._mode in (_Mode.FILTERED, _Mode.RANGE):
                return self._request(_Mode.PROBE_LAST, at)
            return self._end(Outcome.NOTHING_NEW, "the meter has no records", at)
        if code in NOT_SUPPORTED and self._mode is not _Mode.ALL:
            cursor = self.params.cursor
            if (
                self._mode is _Mode.RANGE
                and cursor is not None
                and cursor.last_sequence is not None
                and self._range[0] == cursor.last_sequence + 1
            ):
                self._count("racp_range_refused")  # a range that did not wrap: ">=" is the same
                return self._request(_Mode.FILTERED, at)
            self._fallback = True
            self._count("racp_fallback")
            return self._request(_Mode.ALL, at)
        # Procedure not completed and the rest: keep what is complete (step 6), retry the rest.
        return self._end(Outcome.DEVICE_ERROR, f"RACP response code {code:#04x}", at)

    # ----------------------------------------------------------------------------- completion

    def _complete(self, at: Instant) -> list[Output]:
        cursor = self.params.cursor
        if self._mode is _Mode.PROBE_LAST:
            last = self._records[-1] if self._records else None
            if last is None or (
                cursor is not None
                and last.measurement.sequence_number == cursor.last_sequence
                and last.key[1] == cursor.last_device_time
            ):
                return self._end(Outcome.NOTHING_NEW, "", at)
            assert cursor is not None and cursor.last_sequence is not None
            wrapped = wrapped_range(cursor.last_sequence, last.measurement.sequence_number)
            if wrapped is not None and not self._tried_range:
                self._count("sequence_wrap")
                self._range = wrapped
                return self._request(_Mode.RANGE, at)
            self._count("sequence_reset")
            return self._request(_Mode.ALL, at)
        records = self._records
        if self._mode is _Mode.ALL and cursor is not None and cursor.last_sequence is not None:
            records = self._after_cursor(records, cursor)
        if not self._records:
            return self._end(Outcome.NOTHING_NEW, "", at)
        return self._emit(records, at)

    def _after_cursor(self, records: list[_Record], cursor: DeviceCursor) -> list[_Record]:
        for index, record in enumerate(records):
            if record.key == (cursor.last_sequence, cursor.last_device_time):
                return records[index + 1 :]
        # The cursor's record is gone (reset, memory wrapped): keep all, dedupe by reading_id.
        self._count("cursor_record_missing")
        return records

    def _end(
        self, outcome: Outcome, detail: str, at: Instant, *, disconnect: bool = True
    ) -> list[Output]:
        partial: list[Output] = []
        if self.transferring and outcome not in (Outcome.COMPLETE, Outcome.NOTHING_NEW):
            partial = self._partial(at)
        return [*partial, *super()._end(outcome, detail, at, disconnect=disconnect)]

    def _partial(self, at: Instant) -> list[Output]:
        """What is complete of a transfer that ended early (module docstring, step 6)."""
        if self._pending is not None:
            self._pending = None  # its context may still come: fetched again next time
            self._count("partial_incomplete")
        records = self._records
        cursor = self.params.cursor
        after = None if cursor is None else cursor.last_sequence
        if self._mode is _Mode.PROBE_LAST or not records:
            return []
        if self._mode is _Mode.FILTERED and after is not None:
            first = (after + 1) & SEQUENCE_MAX
        elif self._mode is _Mode.RANGE:
            first = self._range[0]
        else:
            if self._mode is _Mode.ALL and cursor is not None and after is not None:
                records = self._only_after_cursor(records, cursor)
                if not records:
                    return []
            first = records[0].measurement.sequence_number
        run = _unbroken_run(records, first)
        self._count("partial_kept", len(run))
        self._count("partial_dropped", len(self._records) - len(run))
        if not run:
            return []
        last = run[-1]
        ready = self._ready(run, DeviceCursor(last.measurement.sequence_number, last.key[1]), at)
        return [ready]

    def _only_after_cursor(self, records: list[_Record], cursor: DeviceCursor) -> list[_Record]:
        for index, record in enumerate(records):
            if record.key == (cursor.last_sequence, cursor.last_device_time):
                return records[index + 1 :]
        return []  # the cursor's record did not come: nothing is known to follow it

    def _emit(self, records: list[_Record], at: Instant) -> list[Output]:
        last = self._records[-1]  # delivery order: the meter's newest record
        ready = self._ready(
            records, DeviceCursor(last.measurement.sequence_number, last.key[1]), at
        )
        outcome = Outcome.COMPLETE if ready.readings or ready.quarantined else Outcome.NOTHING_NEW
        return [ready, *self._end(outcome, "", at)]

    def _ready(self, records: list[_Record], cursor: DeviceCursor, at: Instant) -> RecordsReady:
        """`records` as readings, with `cursor` and everything quarantined, in one event."""
        assert self.device is not None
        readings: list[Reading] = []
        for record in records:
            try:
                readings.append(
                    build.glucose_reading(
                        record.measurement,
                        record.context,
                        device=self.device,
                        patient_id=self.params.patient_id,
                        gateway_id=self.params.gateway_id,
                        clock=self.clock,
                        received_at=record.received_at,
                        context_missing=record.context_missing,
                    )
                )
            except ReadingValidationError as exc:
                self._quarantine(gatt.GLUCOSE_MEASUREMENT, record.raw, str(exc), at)
        self._count("readings", len(readings))
        ready = RecordsReady(tuple(readings), cursor, tuple(self.quarantined))
        self.quarantined = []
        return ready
