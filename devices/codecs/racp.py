"""Record Access Control Point 0x2A52 (write + indicate), as GLS, BLS and CGMS use it.

Spec: SIG GATT XML `org.bluetooth.characteristic.record_access_control_point.xml`; GLS operands
after the Nordic nRF5 SDK RACP docs and `cgms_racp.c` (docs/device-profiles.md section 2.4).
Layout: Op Code u8 | Operator u8 | Operand (0-18 bytes).

- Requests (op codes 1 report, 2 delete, 3 abort, 4 report number): for operators 2 (<=),
  3 (>=, inclusive) and 4 (range, inclusive) the operand is Filter Type u8 then the value(s):
  filter type 1 = Sequence Number u16 (CGMS: Time Offset u16), 2 = User Facing Time (Date Time).
- Responses: op code 5 carries the number of records (u16 for GLS/CGMS); op code 6 carries
  Request Op Code u8 and Response Code u8. Both need operator 0 Null.

Unknown op codes (Omron's 0x10/0x11), unknown operators and unknown filter types are kept as
ints with the raw `operand` (open enums): a session answers them, it does not crash on them.
`operand` always holds the raw operand bytes, so `bytes()` is exact; build values with the
classmethods, not the constructor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Self

from devices.codecs._reader import Reader, open_enum, put_uint
from devices.codecs.date_time import put_record_time, read_record_time
from devices.codecs.errors import EncodeError

__all__ = ["FilterType", "OpCode", "Operator", "RecordAccessControlPoint", "ResponseCode"]

_NAME = "RecordAccessControlPoint"


class OpCode(IntEnum):
    """RACP op codes; 0 and 7-255 are RFU and stay ints."""

    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class Operator(IntEnum):
    """RACP operators; 7-255 are RFU and stay ints."""

    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class FilterType(IntEnum):
    """GLS filter types (CGMS reuses 1 for Time Offset, also a u16)."""

    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02


class ResponseCode(IntEnum):
    """RACP response codes; 0 and 10-255 are RFU and stay ints."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_REQUESTS = {
    OpCode.REPORT_STORED_RECORDS,
    OpCode.DELETE_STORED_RECORDS,
    OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
}
_ONE_VALUE = {Operator.LESS_THAN_OR_EQUAL_TO, Operator.GREATER_THAN_OR_EQUAL_TO}
FilterValue = int | datetime


@dataclass(frozen=True, slots=True)
class RecordAccessControlPoint:
    """One RACP write or indication, with its operand parsed where the spec defines it."""

    UUID: ClassVar[int] = 0x2A52
    op_code: OpCode | int
    operator: Operator | int
    operand: bytes = b""
    filter_type: FilterType | int | None = None
    filter_value: FilterValue | None = None
    filter_min: FilterValue | None = None
    filter_max: FilterValue | None = None
    request_op_code: OpCode | int | None = None
    response_code: ResponseCode | int | None = None
    number_of_records: int | None = None

    @property
    def is_response(self) -> bool:
        """Whether this is a server indication (op code 5 or 6)."""
        return self.op_code in (OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, OpCode.RESPONSE_CODE)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a request or a response. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, a response with a non-Null operator or a wrong operand
                length, a filter with a wrong value length, or bytes left over.
        """
        r = Reader(_NAME, data)
        op_code = open_enum(OpCode, r.u8("op_code"))
        operator = open_enum(Operator, r.u8("operator"))
        operand = r.data[2:]
        if op_code == OpCode.RESPONSE_CODE:
            if operator != Operator.NULL:
                raise r.fail("operator", f"response needs operator 0, got {operator}", 1)
            request = open_enum(OpCode, r.u8("request_op_code"))
            code = open_enum(ResponseCode, r.u8("response_code"))
            r.end()
            return cls(op_code, operator, operand, request_op_code=request, response_code=code)
        if op_code == OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            if operator != Operator.NULL:
                raise r.fail("operator", f"response needs operator 0, got {operator}", 1)
            count = r.u16("number_of_records")
            r.end()
            return cls(op_code, operator, operand, number_of_records=count)
        if op_code not in _REQUESTS or operator not in _ONE_VALUE | {Operator.WITHIN_RANGE_OF}:
            if op_code in _REQUESTS or op_code == OpCode.ABORT_OPERATION:
                r.end()  # abort, all, first, last, null and RFU operators carry no operand
            return cls(op_code, operator, operand)
        ftype = open_enum(FilterType, r.u8("filter_type"))
        if ftype not in (FilterType.SEQUENCE_NUMBER, FilterType.USER_FACING_TIME):
            return cls(op_code, operator, operand, filter_type=ftype)
        first = _read_filter(
            r, ftype, "filter_min" if operator == Operator.WITHIN_RANGE_OF else "filter_value"
        )
        if operator == Operator.WITHIN_RANGE_OF:
            last = _read_filter(r, ftype, "filter_max")
            r.end()
            return cls(
                op_code, operator, operand, filter_type=ftype, filter_min=first, filter_max=last
            )
        r.end()
        return cls(op_code, operator, operand, filter_type=ftype, filter_value=first)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.op_code, 1, _NAME, "op_code")
        put_uint(out, self.operator, 1, _NAME, "operator")
        return bytes(out) + self.operand

    # -- builders: requests the gateway writes ------------------------------------------------

    @classmethod
    def request(
        cls,
        op_code: OpCode | int,
        operator: Operator | int,
        *,
        filter_type: FilterType | int | None = None,
        filter_value: FilterValue | None = None,
        filter_min: FilterValue | None = None,
        filter_max: FilterValue | None = None,
    ) -> Self:
        """Any request; the operand is encoded from the filter given.

        Raises:
            EncodeError: a filter is missing for operators 2-4, given for others, or its
                values do not fit the filter type.
        """
        out = bytearray()
        if operator in _ONE_VALUE or operator == Operator.WITHIN_RANGE_OF:
            if filter_type is None:
                raise EncodeError(_NAME, "filter_type", f"operator {operator} needs a filter")
            put_uint(out, filter_type, 1, _NAME, "filter_type")
            values = (filter_value,) if operator in _ONE_VALUE else (filter_min, filter_max)
            names = ("filter_value",) if operator in _ONE_VALUE else ("filter_min", "filter_max")
            for name, value in zip(names, values, strict=True):
                _put_filter(out, filter_type, value, name)
        elif filter_type is not None or filter_value is not None or filter_min is not None:
            raise EncodeError(_NAME, "filter_type", f"operator {operator} takes no filter")
        header = bytearray()
        put_uint(header, op_code, 1, _NAME, "op_code")
        put_uint(header, operator, 1, _NAME, "operator")
        return cls.from_bytes(bytes(header + out))

    @classmethod
    def report_all(cls) -> Self:
        """``01 01``: report all stored records."""
        return cls.request(OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def report_first(cls) -> Self:
        """``01 05``: report the oldest record."""
        return cls.request(OpCode.REPORT_STORED_RECORDS, Operator.FIRST_RECORD)

    @classmethod
    def report_last(cls) -> Self:
        """``01 06``: report the most recent record."""
        return cls.request(OpCode.REPORT_STORED_RECORDS, Operator.LAST_RECORD)

    @classmethod
    def filtered(
        cls,
        op_code: OpCode,
        *,
        at_least: FilterValue | None = None,
        at_most: FilterValue | None = None,
    ) -> Self:
        """Records with sequence number (int) or user-facing time (datetime) >=, <= or both.

        Both bounds are inclusive, as the spec says (docs/device-profiles.md quirk 18).

        Raises:
            EncodeError: no bound given, or bounds of different kinds.
        """
        bounds = [b for b in (at_least, at_most) if b is not None]
        if not bounds:
            raise EncodeError(_NAME, "filter_value", "give at_least, at_most or both")
        kinds = {isinstance(b, datetime) for b in bounds}
        if len(kinds) != 1:
            raise EncodeError(_NAME, "filter_type", "mixing sequence numbers and times")
        ftype = FilterType.USER_FACING_TIME if kinds.pop() else FilterType.SEQUENCE_NUMBER
        if at_least is not None and at_most is not None:
            return cls.request(
                op_code,
                Operator.WITHIN_RANGE_OF,
                filter_type=ftype,
                filter_min=at_least,
                filter_max=at_most,
            )
        if at_least is not None:
            return cls.request(
                op_code, Operator.GREATER_THAN_OR_EQUAL_TO, filter_type=ftype, filter_value=at_least
            )
        return cls.request(
            op_code, Operator.LESS_THAN_OR_EQUAL_TO, filter_type=ftype, filter_value=at_most
        )

    @classmethod
    def report(
        cls, *, at_least: FilterValue | None = None, at_most: FilterValue | None = None
    ) -> Self:
        """``01 03 01 lo hi`` and friends: report records within the (inclusive) bounds.

        Raises:
            EncodeError: see `filtered`.
        """
        return cls.filtered(OpCode.REPORT_STORED_RECORDS, at_least=at_least, at_most=at_most)

    @classmethod
    def count_all(cls) -> Self:
        """``04 01``: report the number of all stored records."""
        return cls.request(OpCode.REPORT_NUMBER_OF_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def count(
        cls, *, at_least: FilterValue | None = None, at_most: FilterValue | None = None
    ) -> Self:
        """``04 03 01 lo hi`` and friends: number of records within the bounds.

        Raises:
            EncodeError: see `filtered`.
        """
        return cls.filtered(
            OpCode.REPORT_NUMBER_OF_STORED_RECORDS, at_least=at_least, at_most=at_most
        )

    @classmethod
    def delete_all(cls) -> Self:
        """``02 01``: delete all stored records."""
        return cls.request(OpCode.DELETE_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def delete(
        cls, *, at_least: FilterValue | None = None, at_most: FilterValue | None = None
    ) -> Self:
        """``02 0x 01 ...``: delete records within the bounds.

        Raises:
            EncodeError: see `filtered`.
        """
        return cls.filtered(OpCode.DELETE_STORED_RECORDS, at_least=at_least, at_most=at_most)

    @classmethod
    def abort(cls) -> Self:
        """``03 00``: abort the operation in progress."""
        return cls.request(OpCode.ABORT_OPERATION, Operator.NULL)

    # -- builders: indications a (simulated) server sends ------------------------------------

    @classmethod
    def number_of_records_response(cls, number_of_records: int) -> Self:
        """``05 00 lo hi``.

        Raises:
            EncodeError: the count does not fit a uint16.
        """
        out = bytearray((OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, Operator.NULL))
        put_uint(out, number_of_records, 2, _NAME, "number_of_records")
        return cls.from_bytes(bytes(out))

    @classmethod
    def response(cls, request_op_code: OpCode | int, response_code: ResponseCode | int) -> Self:
        """``06 00 req code``.

        Raises:
            EncodeError: a code does not fit a uint8.
        """
        out = bytearray((OpCode.RESPONSE_CODE, Operator.NULL))
        put_uint(out, request_op_code, 1, _NAME, "request_op_code")
        put_uint(out, response_code, 1, _NAME, "response_code")
        return cls.from_bytes(bytes(out))


def _read_filter(r: Reader, ftype: FilterType | int, field: str) -> FilterValue:
    if ftype == FilterType.SEQUENCE_NUMBER:
        return r.u16(field)
    start = r.offset
    moment, _ = read_record_time(r, field)
    if moment is None:
        raise r.fail(field, "a user-facing time filter cannot be unknown (all zeros)", start)
    return moment


def _put_filter(
    out: bytearray, ftype: FilterType | int, value: FilterValue | None, field: str
) -> None:
    if ftype == FilterType.SEQUENCE_NUMBER and isinstance(value, int):
        put_uint(out, value, 2, _NAME, field)
    elif ftype == FilterType.USER_FACING_TIME and isinstance(value, datetime):
        put_record_time(out, value, _NAME, field)
    else:
        raise EncodeError(_NAME, field, f"{value!r} does not fit filter type {ftype}")
