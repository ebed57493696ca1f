"""The codec contract over every golden vector: decode to the whole object, exact round trip,
every truncated prefix raises `DecodeError`."""

from __future__ import annotations

import pytest

from devices.codecs import REGISTRY, DecodeError, decode
from tests.devices.codecs.vectors import VECTORS, Vector

FIXED = [v for v in VECTORS if v.fixed_shape]


def test_every_registered_characteristic_has_a_golden_vector() -> None:
    assert {v.uuid for v in VECTORS} == set(REGISTRY)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_golden_vector_decodes_to_the_whole_object(vector: Vector) -> None:
    assert decode(vector.uuid, vector.data) == vector.expected


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_golden_vector_round_trips_byte_for_byte(vector: Vector) -> None:
    assert bytes(decode(vector.uuid, vector.data)) == vector.data
    assert bytes(vector.expected) == vector.data


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_from_bytes_matches_decode(vector: Vector) -> None:
    assert type(vector.expected).from_bytes(vector.data) == vector.expected  # type: ignore[attr-defined]


@pytest.mark.parametrize("vector", FIXED, ids=lambda v: v.name)
def test_every_truncated_prefix_raises(vector: Vector) -> None:
    for size in range(len(vector.data)):
        with pytest.raises(DecodeError) as caught:
            decode(vector.uuid, vector.data[:size])
        assert caught.value.hex == vector.data[:size].hex()
        assert 0 <= caught.value.offset <= size


@pytest.mark.parametrize("vector", FIXED, ids=lambda v: v.name)
def test_a_trailing_byte_is_an_error_in_strict_mode(vector: Vector) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(vector.uuid, vector.data + b"\x00")
    assert caught.value.field == "$trailing"
    assert caught.value.offset == len(vector.data)
