"""The MQTT payloads: hub quarantine forwarding (hv.quarantine/1), pairing events
(hv.pairing/1), receipts naming packets and pairing events, the hub's heartbeat (hv.heartbeat/1)
with its storage state."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.errors import ReadingValidationError
from devices.wire import (
    DeviceContact,
    Heartbeat,
    HubPacket,
    PairingEvent,
    Receipt,
    decode_heartbeat,
    decode_packets,
    decode_pairings,
    decode_receipt,
    encode_heartbeat,
    encode_packets,
    encode_pairings,
    encode_receipt,
    has_long_digit_run,
    is_ingest_status_topic,
    loads,
)

PACKET = HubPacket(7, "dev-1", "2a18", b"\x10\x01", "truncated", datetime(2026, 1, 2, tzinfo=UTC))


def test_packets_round_trip() -> None:
    payload = encode_packets("gw-1", [PACKET])
    assert decode_packets(payload, topic_gateway_id="gw-1") == (PACKET,)
    assert json.loads(payload)["packets"][0]["raw_hex"] == "1001"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gateway_id": "gw-2"}, "gateway_id"),
        ({"schema": "hv.batch/1"}, "schema"),
        ({"packets": []}, "packets"),
        ({"packets": [{"packet_id": 1}]}, "packets[0]"),
    ],
)
def test_malformed_packet_envelopes_name_the_field(change: dict[str, object], field: str) -> None:
    body = json.loads(encode_packets("gw-1", [PACKET]))
    body.update(change)
    with pytest.raises(ReadingValidationError) as err:
        decode_packets(json.dumps(body).encode(), topic_gateway_id="gw-1")
    assert err.value.field == field


@pytest.mark.parametrize(
    ("key", "value"),
    [("packet_id", -1), ("packet_id", True), ("raw_hex", "zz"), ("received_at", "2026-01-02")],
)
def test_malformed_packets_name_the_field(key: str, value: object) -> None:
    body = json.loads(encode_packets("gw-1", [PACKET]))
    body["packets"][0][key] = value
    with pytest.raises(ReadingValidationError) as err:
        decode_packets(json.dumps(body).encode(), topic_gateway_id="gw-1")
    assert err.value.field == f"packets[0].{key}"


def test_receipts_carry_packet_ids_only_when_there_are_some() -> None:
    receipt = Receipt(("a",), (), (), (7, 8))
    assert decode_receipt(encode_receipt(receipt)) == receipt
    assert b"packets" not in encode_receipt(Receipt(("a",)))
    with pytest.raises(ReadingValidationError):
        decode_receipt(b'{"schema":"hv.receipt/1","committed":[],"packets":["7"]}')


def test_ingest_status_topics() -> None:
    assert is_ingest_status_topic("hv/v1/ingest/ingest-1/status")
    assert not is_ingest_status_topic("hv/v1/gw/gw-1/status")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a": 1, "a": 2}',
        b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
        b'{"n": 999999999999999999, "f": 0.1, "g": 1e-320, "h": -0.0}',
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        '{"x": "\u00e9"}'.encode("utf-16"),
        b"  [1, 2.5, true, null]  ",
    ],
)
def test_loads_means_what_json_loads_means(payload: bytes) -> None:
    expected = json.loads(payload)
    got = loads(payload)
    assert repr(got) == repr(expected)  # repr: NaN, -0.0 and int vs float compared exactly


@given(
    st.lists(
        st.one_of(st.sampled_from([b"0", b"9", b"/", b":", b" ", b"\xb9"]), st.binary()),
        max_size=60,
    ).map(b"".join)
)
def test_long_digit_runs_are_found_as_the_regular_expression_finds_them(payload: bytes) -> None:
    assert has_long_digit_run(payload) == (re.search(rb"[0-9]{19}", payload) is not None)


def test_long_digit_runs_at_the_edges() -> None:
    assert has_long_digit_run(b"1" * 19)
    assert has_long_digit_run(b'{"n":' + b"9" * 25 + b"}")
    assert not has_long_digit_run(b"1" * 18 + b"." + b"1" * 18)
    assert not has_long_digit_run(b"")


@pytest.mark.parametrize("payload", [b"[1,]", b"{", b"\xff", b"[" * 100_000])
def test_loads_refuses_what_json_loads_refuses(payload: bytes) -> None:
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError, RecursionError)):
        json.loads(payload)
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError, RecursionError)):
        loads(payload)


T1 = datetime(2026, 1, 2, 8, 30, tzinfo=UTC)
CUFF = PairingEvent(
    "e1", "pair", "dev-cuff", "blood_pressure", "p-1", ((1, "p-1"), (2, "p-2")),
    "Omron", "HEM-7600", "BP0001", None, T1, T1,
)  # fmt: skip


def test_pairing_events_round_trip_in_order() -> None:
    unpair = PairingEvent(
        "e2", "unpair", "dev-m", "glucose", "p-1", (), None, None, None, None, T1, T1
    )
    payload = encode_pairings("gw-1", [CUFF, unpair])
    assert decode_pairings(payload, topic_gateway_id="gw-1") == ((CUFF, unpair), ())
    assert CUFF.patient_ids == ("p-1", "p-2") and unpair.patient_ids == ("p-1",)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("action", "forget", "events[0].action"),
        ("user_patients", [[0, "p-1"]], "events[0].user_patients[0]"),
        ("user_patients", [[2, "p-1"], [2, "p-2"]], "events[0].user_patients"),
        ("user_patients", [["2", "p-2"]], "events[0].user_patients[0]"),
        ("at", "2026-01-02T08:30:00", "events[0].at"),
        ("patient_id", "", "events[0].patient_id"),
        ("serial", 7, "events[0].serial"),
    ],
)
def test_a_bad_pairing_event_is_rejected_alone_naming_the_field(
    key: str, value: object, field: str
) -> None:
    body = json.loads(encode_pairings("gw-1", [CUFF, CUFF]))
    body["events"][0][key] = value
    good, bad = decode_pairings(json.dumps(body).encode(), topic_gateway_id="gw-1")
    assert good == (CUFF,)
    (rejected,) = bad
    assert rejected.error.field == field and rejected.event_id == "e1"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"gateway_id": "gw-2"}, "gateway_id"), ({"events": []}, "events"), ({"x": 1}, "$")],
)
def test_malformed_pairing_envelopes_name_the_field(change: dict[str, object], field: str) -> None:
    body = json.loads(encode_pairings("gw-1", [CUFF]))
    body.update(change)
    with pytest.raises(ReadingValidationError) as err:
        decode_pairings(json.dumps(body).encode(), topic_gateway_id="gw-1")
    assert err.value.field == field


def test_receipts_carry_pairing_event_ids_only_when_there_are_some() -> None:
    receipt = Receipt((), pairings=("e1", "e2"))
    assert decode_receipt(encode_receipt(receipt)) == receipt
    assert b"pairings" not in encode_receipt(Receipt(("a",)))
    with pytest.raises(ReadingValidationError) as err:
        decode_receipt(b'{"schema":"hv.receipt/1","committed":[],"pairings":[1]}')
    assert err.value.field == "pairings"


BEAT = Heartbeat(
    "gw-1",
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    (DeviceContact("dev-1", "p-1", "glucose_meter", datetime(2026, 1, 1, tzinfo=UTC), None),),
)


def test_a_heartbeat_says_its_storage_is_full_only_when_it_is() -> None:
    assert "storage_full" not in json.loads(encode_heartbeat(BEAT))  # as hubs always said
    assert decode_heartbeat(encode_heartbeat(BEAT), topic_gateway_id="gw-1") == BEAT
    full = Heartbeat(BEAT.gateway_id, BEAT.sent_at, BEAT.devices, storage_full=True)
    assert json.loads(encode_heartbeat(full))["storage_full"] is True
    assert decode_heartbeat(encode_heartbeat(full), topic_gateway_id="gw-1") == full


@pytest.mark.parametrize(("change", "field"), [({"storage_full": "yes"}, "storage_full"),
                                               ({"disk": 1}, "$")])  # fmt: skip
def test_malformed_heartbeats_name_the_field(change: dict[str, object], field: str) -> None:
    body = {**json.loads(encode_heartbeat(BEAT)), **change}
    with pytest.raises(ReadingValidationError) as info:
        decode_heartbeat(json.dumps(body).encode(), topic_gateway_id="gw-1")
    assert info.value.field == field
