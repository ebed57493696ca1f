"""Raw-sample batches on the wire (hv.samples/1): exact round trip, every bad field named, one
bad batch spoils only itself, receipts name sample batches."""

from __future__ import annotations

import json

import pytest

from devices.errors import ReadingValidationError
from devices.reading import Kind
from devices.sample_wire import (
    SampleBatch,
    batch_to_json,
    decode_sample_batches,
    encode_sample_batches,
    sample_batch_id,
)
from devices.wire import Receipt, decode_receipt, encode_receipt

T0 = 1_772_352_000_000


def _batch(kind: Kind = Kind.HEART_RATE, device: str = "dev-1") -> SampleBatch:
    values = (
        {"heart_rate_per_min": (71.0, 72.0, 74.0), "rr_interval_s": (0.84, None, 0.81)}
        if kind is Kind.HEART_RATE
        else {"spo2_pct": (97.0, 96.0, 96.0), "pulse_per_min": (70.0, 71.0, None)}
    )
    return SampleBatch(sample_batch_id(device, kind, T0), "p-1", device, kind, T0,
                       (12, 1013, 2011), values)  # fmt: skip


def test_round_trip_is_exact() -> None:
    batches = [_batch(), _batch(Kind.SPO2, "dev-2")]
    payload = encode_sample_batches("gw-1", batches)
    envelope = decode_sample_batches(payload, topic_gateway_id="gw-1")
    assert envelope.batches == tuple(batches) and envelope.rejected == ()
    assert encode_sample_batches("gw-1", envelope.batches) == payload


def test_the_batch_id_is_the_device_kind_and_minute() -> None:
    assert sample_batch_id("d", Kind.HEART_RATE, T0) == sample_batch_id("d", Kind.HEART_RATE, T0)
    assert sample_batch_id("d", Kind.HEART_RATE, T0) != sample_batch_id("d", Kind.SPO2, T0)
    assert sample_batch_id("d", Kind.HEART_RATE, T0) != sample_batch_id("d", Kind.HEART_RATE, 1)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda b: b | {"kind": "glucose"}, "batches[0].kind"),
        (lambda b: b | {"id": sample_batch_id("other", Kind.HEART_RATE, T0)}, "batches[0].id"),
        (lambda b: b | {"dt_ms": [5, 3, 9]}, "batches[0].dt_ms"),
        (lambda b: b | {"values": {"heart_rate_per_min": [71, 72]}},
         "batches[0].values.heart_rate_per_min"),
        (lambda b: b | {"values": {"heart_rate_per_min": [71, 400, 72]}},
         "batches[0].values.heart_rate_per_min"),
        (lambda b: b | {"values": {"spo2_pct": [97, 97, 97]}}, "batches[0].values.spo2_pct"),
        (lambda b: b | {"t0_ms": 12}, "batches[0].t0_ms"),
        (lambda b: {k: v for k, v in b.items() if k != "patient_id"}, "batches[0].patient_id"),
        (lambda b: b | {"extra": 1}, "batches[0].extra"),
    ],
)  # fmt: skip
def test_a_bad_batch_is_rejected_alone_and_named(edit: object, field: str) -> None:
    good = batch_to_json(_batch(Kind.SPO2, "dev-2"))
    bad = edit(batch_to_json(_batch()))  # type: ignore[operator]
    payload = json.dumps({"schema": "hv.samples/1", "gateway_id": "g", "batches": [bad, good]})
    envelope = decode_sample_batches(payload.encode(), topic_gateway_id="g")
    assert [b.device_id for b in envelope.batches] == ["dev-2"]
    [rejected] = envelope.rejected
    assert rejected.error.field == field
    assert json.loads(rejected.raw) == bad


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"\xff", "$"),
        (b'{"schema": "hv.batch/1"}', "schema"),
        (b'{"schema": "hv.samples/1", "gateway_id": "other", "batches": []}', "gateway_id"),
        (b'{"schema": "hv.samples/1", "gateway_id": "g", "batches": []}', "batches"),
    ],
)
def test_a_bad_envelope_is_named(payload: bytes, field: str) -> None:
    with pytest.raises(ReadingValidationError) as err:
        decode_sample_batches(payload, topic_gateway_id="g")
    assert err.value.field == field


def test_receipts_carry_sample_batches_and_old_ones_still_parse() -> None:
    receipt = Receipt(("r1",), sample_batches=("b1", "b2"))
    assert decode_receipt(encode_receipt(receipt)) == receipt
    assert decode_receipt(b'{"schema":"hv.receipt/1","committed":[]}').sample_batches == ()
