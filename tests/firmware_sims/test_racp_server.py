"""The pure RACP server: operator support per model, delete bookkeeping, malformed writes."""

from __future__ import annotations

from datetime import datetime

from devices.codecs import GlucoseMeasurement, RecordAccessControlPoint
from devices.codecs.racp import Operator
from firmware_sims.racp_server import GlucoseRecord, RacpServer


def _server(count: int, **kwargs: object) -> RacpServer:
    server = RacpServer(**kwargs)  # type: ignore[arg-type]
    for seq in range(count):
        server.add(
            GlucoseRecord(
                GlucoseMeasurement.build(
                    sequence_number=seq, base_time=datetime(2026, 1, 1, 8, seq)
                )
            )
        )
    return server


def test_a_model_without_range_support_says_operator_not_supported() -> None:
    server = _server(3, operators=frozenset({Operator.ALL_RECORDS, Operator.LAST_RECORD}))
    action = server.on_write(bytes(RecordAccessControlPoint.report(at_least=0, at_most=1)))
    assert action.response == b"\x06\x00\x01\x04"
    assert action.records == ()
    assert server.on_write(b"\x01\x06").records == tuple(server.records[-1:])


def test_delete_is_applied_only_after_success_and_counts_follow() -> None:
    server = _server(4)
    action = server.on_write(bytes(RecordAccessControlPoint.delete(at_least=2)))
    assert action.response == b"\x06\x00\x02\x01"
    assert len(server.records) == 4  # the firmware applies it when the procedure completes
    server.apply_delete(action.delete)
    assert [r.sequence_number for r in server.records] == [0, 1]
    assert server.on_write(b"\x04\x01").response == b"\x05\x00\x02\x00"
    assert server.on_write(b"\x02\x01").response == b"\x06\x00\x02\x01"


def test_a_meter_without_delete_and_empty_or_garbage_writes() -> None:
    server = _server(1, supports_delete=False)
    assert server.on_write(b"\x02\x01").response == b"\x06\x00\x02\x02"
    assert server.on_write(b"").response == b"\x06\x00\x00\x05"
    assert server.on_write(b"\x01").response == b"\x06\x00\x01\x05"  # no operator byte
    assert server.on_write(b"\x04\x01\x99").response == b"\x06\x00\x04\x05"  # trailing byte
