"""Validation of received messages: what is kept, what is quarantined, what is receipted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devices import reading_to_json
from devices.wire import encode_batch, readings_topic
from ingest.consumer import Inbound, decode_messages
from tests.ingest.support import make_reading

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _msg(topic: str, payload: bytes, mid: int = 1) -> Inbound:
    return Inbound(mid=mid, qos=1, topic=topic, payload=payload, dup=False, generation=1)


def test_good_readings_are_kept_and_bad_ones_quarantined_with_their_claimed_id() -> None:
    good = make_reading("gw-a", "p1", "SN1", 2)
    bad = reading_to_json(make_reading("gw-a", "p1", "SN1", 4))
    bad["values"] = {"glucose_mmol_l": 500.0}
    body = json.loads(encode_batch("gw-a", [good]))
    body["readings"].append(bad)
    decoded = decode_messages([_msg(readings_topic("gw-a"), json.dumps(body).encode())], NOW)
    assert [r.reading_id for r in decoded.readings] == [good.reading_id]
    assert decoded.committed_by_gw == {"gw-a": [good.reading_id]}
    assert decoded.quarantined_by_gw == {"gw-a": [bad["reading_id"]]}
    (item,) = decoded.quarantined
    assert (item.field, item.index, item.gateway_id) == ("values.glucose_mmol_l", 1, "gw-a")
    assert json.loads(item.payload) == bad


def test_whole_envelope_failures_keep_the_exact_bytes() -> None:
    other = encode_batch("gw-b", [make_reading("gw-b", "p1", "SN1", 2)])
    messages = [
        _msg(readings_topic("gw-a"), b"\xff\xfe not json", 1),
        _msg(readings_topic("gw-a"), other, 2),  # gw-a submitting gw-b's batch
        _msg("hv/v1/other/x", b"{}", 3),
    ]
    decoded = decode_messages(messages, NOW)
    assert decoded.readings == [] and not decoded.committed_by_gw
    assert [(q.payload, q.field, q.gateway_id) for q in decoded.quarantined] == [
        (b"\xff\xfe not json", "$", "gw-a"),
        (other, "gateway_id", "gw-a"),
        (b"{}", "$topic", None),
    ]
    assert all(q.index is None and q.reading_id is None for q in decoded.quarantined)


def test_json_nested_beyond_the_parser_limit_is_quarantined() -> None:
    # json.loads raises RecursionError here; the consumer must keep going and keep the bytes.
    deep = b"[" * 100_000 + b"]" * 100_000
    decoded = decode_messages([_msg(readings_topic("gw-a"), deep)], NOW)
    assert len(decoded.quarantined) == 1 and decoded.quarantined[0].payload == deep
