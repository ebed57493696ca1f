"""Sealed secrets: round trip, bound to their row, key rotation, refusals."""

from __future__ import annotations

import pytest

from careteam.errors import SecretsError
from careteam.secrets import SecretBox, is_sealed, new_key_entry


def test_seal_open_and_rotate() -> None:
    old = new_key_entry("k1")
    box = SecretBox.from_setting(old)
    sealed = box.seal("whsec_abc", "endpoint-1")
    assert is_sealed(sealed) and "whsec_abc" not in sealed
    assert box.open(sealed, "endpoint-1") == "whsec_abc"
    assert box.seal("whsec_abc", "endpoint-1") != sealed  # a fresh nonce every time
    rotated = SecretBox.from_setting(f"{new_key_entry('k2')},{old}")
    moved = rotated.reseal(sealed, "endpoint-1")
    assert moved.startswith("hvs1:k2:") and rotated.open(moved, "endpoint-1") == "whsec_abc"
    assert rotated.open(sealed, "endpoint-1") == "whsec_abc"  # old key still opens
    with pytest.raises(SecretsError, match="not configured"):
        box.open(moved, "endpoint-1")


def test_a_secret_moved_to_another_row_or_tampered_does_not_open() -> None:
    box = SecretBox.from_setting(new_key_entry())
    sealed = box.seal("whsec_abc", "endpoint-1")
    with pytest.raises(SecretsError, match="does not open"):
        box.open(sealed, "endpoint-2")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretsError):
        box.open(flipped, "endpoint-1")
    with pytest.raises(SecretsError, match="not a sealed secret"):
        box.open("whsec_abc", "endpoint-1")


@pytest.mark.parametrize(
    "setting", ["", "k1", "k1:!!!", "k1:AAAA", f"{new_key_entry('a')},{new_key_entry('a')}"]
)
def test_bad_settings_are_refused(setting: str) -> None:
    with pytest.raises(SecretsError):
        SecretBox.from_setting(setting)
