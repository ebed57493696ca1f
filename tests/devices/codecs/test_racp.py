"""RACP indications from NordicSemiconductor/Android-BLE-Library
RecordAccessControlPointDataCallbackTest: every response code, open codes kept as ints, and the
count lengths strict mode refuses (Nordic accepts 1 and 4 bytes; GLS/CGMS say uint16)."""

from __future__ import annotations

import pytest

from devices.codecs import DecodeError, OpCode, RecordAccessControlPoint, ResponseCode, decode


@pytest.mark.parametrize(
    ("payload", "request_op_code", "response_code"),
    [
        ([6, 0, 1, 1], OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS),
        ([6, 0, 12, 2], 12, ResponseCode.OP_CODE_NOT_SUPPORTED),
        ([6, 0, 1, 3], OpCode.REPORT_STORED_RECORDS, ResponseCode.INVALID_OPERATOR),
        ([6, 0, 2, 4], OpCode.DELETE_STORED_RECORDS, ResponseCode.OPERATOR_NOT_SUPPORTED),
        ([6, 0, 1, 5], OpCode.REPORT_STORED_RECORDS, ResponseCode.INVALID_OPERAND),
        ([6, 0, 1, 6], OpCode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND),
        ([6, 0, 3, 7], OpCode.ABORT_OPERATION, ResponseCode.ABORT_UNSUCCESSFUL),
        ([6, 0, 2, 8], OpCode.DELETE_STORED_RECORDS, ResponseCode.PROCEDURE_NOT_COMPLETED),
        ([6, 0, 2, 9], OpCode.DELETE_STORED_RECORDS, ResponseCode.OPERAND_NOT_SUPPORTED),
        ([6, 0, 1, 10], OpCode.REPORT_STORED_RECORDS, 10),
    ],
)
def test_nordic_response_codes(
    payload: list[int], request_op_code: int, response_code: int
) -> None:
    data = bytes(payload)
    value = decode(0x2A52, data)
    assert value == RecordAccessControlPoint(
        OpCode.RESPONSE_CODE,
        0,
        data[2:],
        request_op_code=request_op_code,
        response_code=response_code,
    )
    assert isinstance(value.response_code, ResponseCode) == (response_code != 10)
    assert bytes(value) == data


def test_nordic_number_of_records_uint16() -> None:
    value = decode(0x2A52, bytes([5, 0, 2, 1]))
    assert isinstance(value, RecordAccessControlPoint)
    assert value.number_of_records == 258


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([5, 0, 1], "number_of_records"),  # Nordic: uint8 accepted
        ([5, 0, 4, 3, 2, 1], "$trailing"),  # Nordic: uint32 accepted
        ([5, 0, 3, 2, 1], "$trailing"),  # Nordic: unsupported length
        ([6, 1, 1], "operator"),  # Nordic: invalid operator
        ([1, 3, 1, 2], "filter_value"),  # Nordic "wrong op code" payload, cut short here
    ],
)
def test_count_lengths_other_than_uint16_are_refused(payload: list[int], field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(0x2A52, bytes(payload))
    assert caught.value.field == field


def test_nordic_report_request_indicated_back_is_still_a_request() -> None:
    # Nordic's client rejects `01 03 01 02 00` as an indication (op code 1 is a request);
    # the codec decodes what it is, and the session decides it is unexpected.
    value = decode(0x2A52, bytes([1, 3, 1, 2, 0]))
    assert isinstance(value, RecordAccessControlPoint)
    assert not value.is_response and value.filter_value == 2
