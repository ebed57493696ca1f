"""Seeded property runs (hypothesis prints the failing example and a reproduce blob):
random valid values round trip exactly; random and mutated bytes raise only `DecodeError`,
and whatever does decode re-encodes to the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.codecs import PROFILES, REGISTRY, DecodeError, decode
from tests.devices.codecs.strategies import VALID
from tests.devices.codecs.vectors import VECTORS

FAST = settings(
    max_examples=120,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE_NAMES = [None, *PROFILES]


def test_every_registered_characteristic_has_a_strategy() -> None:
    assert set(VALID) == set(REGISTRY)


@pytest.mark.parametrize("uuid", sorted(VALID), ids=lambda u: f"0x{u:04X}")
@FAST
@given(data=st.data())
def test_random_valid_values_round_trip(uuid: int, data: st.DataObject) -> None:
    value = data.draw(VALID[uuid])
    payload = bytes(value)
    profile = getattr(value, "profile", None)
    decoded = decode(uuid, payload, profile=profile)
    assert decoded == value
    assert bytes(decoded) == payload


def _check_only_decode_error(uuid: int, payload: bytes, profile: str | None) -> None:
    try:
        value = decode(uuid, payload, profile=profile)
    except DecodeError as error:
        assert error.hex == payload.hex() or error.field == "$uuid"
        assert 0 <= error.offset <= len(payload)
    else:
        assert bytes(value) == payload


@pytest.mark.parametrize("uuid", sorted(REGISTRY), ids=lambda u: f"0x{u:04X}")
@FAST
@given(payload=st.binary(max_size=32), profile=st.sampled_from(PROFILE_NAMES))
def test_random_bytes_raise_only_decode_error(
    uuid: int, payload: bytes, profile: str | None
) -> None:
    _check_only_decode_error(uuid, payload, profile)


@FAST
@given(
    vector=st.sampled_from(VECTORS),
    edits=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 45),
    profile=st.sampled_from(PROFILE_NAMES),
)
def test_mutated_golden_vectors_raise_only_decode_error(
    vector: object, edits: list[tuple[int, int]], cut: int, profile: str | None
) -> None:
    payload = bytearray(vector.data)  # type: ignore[attr-defined]
    for position, byte in edits:
        if position < len(payload):
            payload[position] = byte
        else:
            payload.append(byte)
    _check_only_decode_error(vector.uuid, bytes(payload[:cut]), profile)  # type: ignore[attr-defined]
