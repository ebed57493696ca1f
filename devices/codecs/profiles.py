"""Named quirk profiles for real devices that break the spec.

A profile is chosen explicitly by the caller (the gateway matches it on the advertised name or
the DIS model, as the vendors' own apps do); the strict decoders never guess. Each profile says
which devices it is for and where the quirk was reported (docs/device-profiles.md section 3 has the
details). A payload decoded under a profile remembers it, so `bytes()` gives back the device's own
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.codecs.errors import UnknownProfileError

__all__ = ["PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    """What a quirk profile changes, and why we believe the devices need it."""

    name: str
    devices: str
    source: str
    # Blood Pressure Measurement 0x2A35: pulse rate and measurement status byte-swapped.
    bp_big_endian_pulse_and_status: bool = False
    # Blood Pressure Measurement 0x2A35: a User ID byte is sent although flag bit 3 is clear.
    bp_unflagged_user_id: bool = False
    # Glucose Measurement 0x2A18: month 13 in Base Time is repaired to January (same year).
    base_time_month_13_repair: bool = False
    # Glucose Measurement Context 0x2A34: reserved Meal value 6 marks a blood ketone result.
    meal_6_is_ketone: bool = False


BEURER_BM = Profile(
    name="beurer-bm",
    devices="Beurer BM48, BM59, BM85, ELITE900 blood-pressure cuffs",
    source=(
        "docs/device-profiles.md quirk 23: derdilla/blood-pressure-monitor-fl commit 3ac8958 "
        "(decoding_util.dart readSFloatBe/readUInt16Be), matched on the advertised name as the "
        "official Beurer app does; flags carry RFU bit 6 (0x56), which strict mode keeps too"
    ),
    bp_big_endian_pulse_and_status=True,
    bp_unflagged_user_id=True,
)

ISENS = Profile(
    name="isens",
    devices="i-SENS CareSens glucose meters",
    source=(
        "docs/device-profiles.md quirks 3 and 14: month 13 repaired to 1 as "
        "tidepool-org/ble-glucose commit "
        "705b262 does; Meal 6 = ketone per xDrip+ glucosemeter/caresens/ContextRx.java and "
        "tidepool-org/uploader bluetoothLEDriver.js"
    ),
    base_time_month_13_repair=True,
    meal_6_is_ketone=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (BEURER_BM, ISENS)}


def get_profile(name: str | None) -> Profile | None:
    """The profile called `name`; None stays None (strict).

    Raises:
        UnknownProfileError: no profile has that name.
    """
    if name is None:
        return None
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(name, tuple(PROFILES)) from None
