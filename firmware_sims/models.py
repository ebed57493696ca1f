"""The catalogue of simulated device models (pure data).

Each model copies what PROFILES.md documents about a real device family: names, manufacturers,
time base, security, transfer behaviour and byte-level quirks. Models are "-like": they behave
as the public reports say, they are not the vendors' firmware.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from firmware_sims.errors import ScenarioError


class DeviceKind(StrEnum):
    """Which SIG profile the device implements."""

    GLUCOSE_METER = "glucose_meter"
    BP_CUFF = "bp_cuff"


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """A simulated device family (see the module docstring)."""

    key: str
    kind: DeviceKind
    manufacturer: str
    model: str
    name_prefix: str  # advertised local name = prefix + last serial digits
    security: Literal["none", "just_works", "passkey"]
    source: str
    bonded_host_only: bool = False
    # glucose meters
    unit: Literal["mg/dL", "mmol/L"] = "mg/dL"
    base_time_utc: bool = False  # Base Time is UTC and Time Offset the local offset
    time_offset: bool = True  # sends the Time Offset field at all
    user_facing_time_filter: bool = True  # RACP filter type 2 supported (optional in GLS)
    context: bool = True  # has Glucose Measurement Context
    # blood-pressure cuffs
    send_all_on_connect: bool = False  # dumps its whole memory on every connection
    beurer_quirks: bool = False  # big-endian pulse/status, unflagged User ID, RFU flag bit 6
    users: int = 1
    disconnect_after_transfer: bool = False


MODELS: dict[str, DeviceModel] = {
    m.key: m
    for m in (
        DeviceModel(
            key="contour-like",
            kind=DeviceKind.GLUCOSE_METER,
            manufacturer="Ascensia Diabetes Care",
            model="Contour Next One (simulated)",
            name_prefix="Contour",
            security="just_works",
            unit="mg/dL",
            base_time_utc=True,
            source=(
                "PROFILES.md quirks 1, 10, 13, 18: Base Time is UTC and Time Offset the local "
                "offset (LiamsGitHub/GlucometerBluetoothToHealthKit README); measurement, then "
                "context, then the RACP response; >= is inclusive"
            ),
        ),
        DeviceModel(
            key="accu-chek-like",
            kind=DeviceKind.GLUCOSE_METER,
            manufacturer="Roche",
            model="Accu-Chek Guide (simulated)",
            name_prefix="meter+",
            security="passkey",
            unit="mg/dL",
            source=(
                "PROFILES.md quirk 9: PIN bonding, the meter displays the passkey, no listeners "
                "before pairing (xDrip issue 208, react-native-ble-plx issue 652); offset 0"
            ),
        ),
        DeviceModel(
            key="bonded-only-meter",
            kind=DeviceKind.GLUCOSE_METER,
            manufacturer="homevitals",
            model="GLS mmol/L meter, bonded host only (simulated)",
            name_prefix="GlucoB",
            security="just_works",
            bonded_host_only=True,
            unit="mmol/L",
            user_facing_time_filter=False,
            source=(
                "PROFILES.md quirks 1 and 11: an mmol/L meter sending +180 min offsets "
                "(nordicsemi/Android-BLE-Library issue 130); talks only to its bonded host, as "
                "the A&D UA-651BLE does; answers Operand Not Supported for time filters (19)"
            ),
        ),
        DeviceModel(
            key="omron-like",
            kind=DeviceKind.BP_CUFF,
            manufacturer="OMRON HEALTHCARE",
            model="X4 Smart (simulated)",
            name_prefix="BLESmart_",
            security="just_works",
            users=2,
            source=(
                "PROFILES.md quirks 7, 11, 16: two users, sends only readings not yet "
                "transferred ('deletes after transfer', derdilla docs/bluetooth.md)"
            ),
        ),
        DeviceModel(
            key="beurer-like",
            kind=DeviceKind.BP_CUFF,
            manufacturer="Beurer GmbH",
            model="BM59 (simulated)",
            name_prefix="BM59",
            security="just_works",
            send_all_on_connect=True,
            beurer_quirks=True,
            users=2,
            source=(
                "PROFILES.md quirks 16 and 23: dumps its whole memory on every transfer; pulse "
                "and status big-endian, User ID always sent without flag bit 3, flags bit 6 set "
                "(derdilla/blood-pressure-monitor-fl commit 3ac8958)"
            ),
        ),
        DeviceModel(
            key="and-like",
            kind=DeviceKind.BP_CUFF,
            manufacturer="A&D Medical",
            model="UA-651BLE (simulated)",
            name_prefix="A&D_UA-651",
            security="passkey",
            bonded_host_only=True,
            disconnect_after_transfer=True,
            source=(
                "PROFILES.md quirk 11: sends data only to the paired host, then disconnects by "
                "itself (obniz UA651BLE README-ja.md); passkey like the Silvercrest SBM69"
            ),
        ),
    )
}


def get_model(key: str, *, where: str = "model") -> DeviceModel:
    """The model called `key`.

    Raises:
        ScenarioError: no such model (the message lists the known ones).
    """
    try:
        return MODELS[key]
    except KeyError:
        raise ScenarioError(where, f"unknown model {key!r} (known: {sorted(MODELS)})") from None
