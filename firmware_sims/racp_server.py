"""The server side of the Record Access Control Point over a meter's stored records (sans-IO).

GLS v1.0.1 section 3.4 (RACP procedures) and 3.4.2 (error handling); docs/device-profiles.md section
2.4. `RacpServer.on_write(data)` takes the bytes a client wrote and returns what the firmware must
do: send these records then this response, or just this response. The adapter sends them and asks
`abort_requested` between records. Supported per model: which operators and filter types (a model
that does not support "user facing time" answers Operand Not Supported, docs/device-profiles.md
quirk 19). Records are kept in storage order, oldest first; filters compare the values as the spec
says, so a sequence number that wrapped at 65535 really is "less" (quirk 17).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from devices.codecs.errors import DecodeError
from devices.codecs.glucose_measurement import GlucoseMeasurement
from devices.codecs.glucose_measurement_context import GlucoseMeasurementContext
from devices.codecs.racp import (
    FilterType,
    OpCode,
    Operator,
    RecordAccessControlPoint,
    ResponseCode,
)

ALL_OPERATORS = frozenset(
    {
        Operator.ALL_RECORDS,
        Operator.LESS_THAN_OR_EQUAL_TO,
        Operator.GREATER_THAN_OR_EQUAL_TO,
        Operator.WITHIN_RANGE_OF,
        Operator.FIRST_RECORD,
        Operator.LAST_RECORD,
    }
)
_REQUEST_OP_CODES = frozenset(
    {
        OpCode.REPORT_STORED_RECORDS,
        OpCode.DELETE_STORED_RECORDS,
        OpCode.ABORT_OPERATION,
        OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
ALL_FILTERS = frozenset({FilterType.SEQUENCE_NUMBER, FilterType.USER_FACING_TIME})


class StoredRecord(Protocol):
    """What the filters compare: GLS records, and CGM records (whose "sequence number" is the
    Time Offset, CGMS filter type 1)."""

    @property
    def sequence_number(self) -> int:
        """Filter type 1."""

    @property
    def user_facing_time(self) -> datetime | None:
        """Filter type 2 (None: the record cannot match a time filter)."""


R = TypeVar("R", bound=StoredRecord)


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    """One stored record: the measurement and, when its flag says so, its context."""

    measurement: GlucoseMeasurement
    context: GlucoseMeasurementContext | None = None

    @property
    def sequence_number(self) -> int:
        """The record's sequence number (u16)."""
        return self.measurement.sequence_number

    @property
    def user_facing_time(self) -> datetime | None:
        """Base Time + Time Offset, what filter type 2 compares."""
        return self.measurement.user_facing_time


@dataclass(frozen=True, slots=True)
class RacpAction(Generic[R]):
    """What the firmware does for one RACP write: notify `records` (measurement, then its
    context), then indicate `response`. `delete` lists records to drop (after success)."""

    response: bytes
    records: tuple[R, ...] = ()
    delete: tuple[R, ...] = ()
    is_abort: bool = False


def _respond(request_op_code: int, code: ResponseCode) -> RacpAction[R]:
    return RacpAction(bytes(RecordAccessControlPoint.response(request_op_code, code)))


@dataclass
class RacpServer(Generic[R]):
    """RACP procedures over a record list (mutable: records are added and deleted)."""

    records: list[R] = field(default_factory=list)
    operators: frozenset[Operator] = ALL_OPERATORS
    filter_types: frozenset[FilterType] = ALL_FILTERS
    supports_delete: bool = True

    def add(self, record: R) -> None:
        """Store a new record (newest last)."""
        self.records.append(record)

    def on_write(self, data: bytes) -> RacpAction[R]:
        """Decide what to do for a client's RACP write (never raises on bad bytes: a meter
        answers with a response code, GLS 3.4.2)."""
        if not data:
            return _respond(0, ResponseCode.INVALID_OPERAND)
        if data[0] not in _REQUEST_OP_CODES:
            # Responses (5, 6) and RFU op codes are not requests a client may write, whatever
            # follows them (GLS 1.0.1 3.4.2: Op Code Not Supported).
            return _respond(data[0], ResponseCode.OP_CODE_NOT_SUPPORTED)
        try:
            request = RecordAccessControlPoint.from_bytes(data)
        except DecodeError:
            return _respond(data[0], ResponseCode.INVALID_OPERAND)
        op = request.op_code
        if op == OpCode.ABORT_OPERATION:
            if request.operator != Operator.NULL:
                return _respond(op, ResponseCode.INVALID_OPERATOR)
            # Nothing is running when a write reaches here; the adapter handles a live abort.
            return RacpAction(
                bytes(RecordAccessControlPoint.response(op, ResponseCode.SUCCESS)), is_abort=True
            )
        if op not in (
            OpCode.REPORT_STORED_RECORDS,
            OpCode.DELETE_STORED_RECORDS,
            OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        ) or (op == OpCode.DELETE_STORED_RECORDS and not self.supports_delete):
            return _respond(op, ResponseCode.OP_CODE_NOT_SUPPORTED)
        selected = self._select(request)
        if isinstance(selected, ResponseCode):
            return _respond(op, selected)
        if op == OpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            return RacpAction(
                bytes(RecordAccessControlPoint.number_of_records_response(len(selected)))
            )
        if not selected:
            return _respond(op, ResponseCode.NO_RECORDS_FOUND)
        if op == OpCode.DELETE_STORED_RECORDS:
            return RacpAction(
                bytes(RecordAccessControlPoint.response(op, ResponseCode.SUCCESS)),
                delete=tuple(selected),
            )
        return RacpAction(
            bytes(RecordAccessControlPoint.response(op, ResponseCode.SUCCESS)),
            records=tuple(selected),
        )

    def apply_delete(self, records: Sequence[R]) -> None:
        """Drop deleted records (by identity: duplicates stored twice are two records)."""
        doomed = {id(r) for r in records}
        self.records = [r for r in self.records if id(r) not in doomed]

    def _select(self, request: RecordAccessControlPoint) -> list[R] | ResponseCode:
        operator = request.operator
        if not isinstance(operator, Operator) or operator == Operator.NULL:
            return ResponseCode.INVALID_OPERATOR
        if operator not in self.operators:
            return ResponseCode.OPERATOR_NOT_SUPPORTED
        if operator == Operator.ALL_RECORDS:
            return list(self.records)
        if operator == Operator.FIRST_RECORD:
            return self.records[:1]
        if operator == Operator.LAST_RECORD:
            return self.records[-1:]
        if request.filter_type is None:
            return ResponseCode.INVALID_OPERAND
        if request.filter_type not in self.filter_types:
            return ResponseCode.OPERAND_NOT_SUPPORTED
        if operator == Operator.WITHIN_RANGE_OF:
            low, high = request.filter_min, request.filter_max
        elif operator == Operator.GREATER_THAN_OR_EQUAL_TO:
            low, high = request.filter_value, None
        else:
            low, high = None, request.filter_value
        if low is not None and high is not None and _gt(low, high):
            return ResponseCode.INVALID_OPERAND
        by_time = request.filter_type == FilterType.USER_FACING_TIME
        out = []
        for record in self.records:
            key: int | datetime | None = (
                record.user_facing_time if by_time else record.sequence_number
            )
            if key is None:
                continue
            if low is not None and _gt(low, key):
                continue
            if high is not None and _gt(key, high):
                continue
            out.append(record)
        return out


def _gt(a: int | datetime, b: int | datetime) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a > b
    if isinstance(a, int) and isinstance(b, int):
        return a > b
    return False  # mixed kinds cannot come from one decoded filter
