"""The catalogue of simulated device models (pure data).

Each model copies what docs/device-profiles.md documents about a real device family: names,
manufacturers, time base, security, transfer behaviour and byte-level quirks. Models are "-like":
they behave as the public reports say, they are not the vendors' firmware.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal

from firmware_sims.errors import ScenarioError
from firmware_sims.radio_timing import METER_TIMING, WEARABLE_TIMING, LinkTiming


class Appearance(IntEnum):
    """GAP Appearance values (Assigned Numbers 2.6: category << 6 | subcategory)."""

    GENERIC_GLUCOSE_METER = 0x0400  # category 0x010
    ARM_BLOOD_PRESSURE = 0x0381  # category 0x00E, subcategory 0x01
    WRIST_BLOOD_PRESSURE = 0x0382  # category 0x00E, subcategory 0x02
    HEART_RATE_BELT = 0x0341  # category 0x00D, subcategory 0x01
    EAR_THERMOMETER = 0x0301  # category 0x00C, subcategory 0x01
    GENERIC_WEIGHT_SCALE = 0x0C80  # category 0x032
    CONTINUOUS_GLUCOSE_MONITOR = 0x0D00  # category 0x034
    FINGERTIP_PULSE_OXIMETER = 0x0C41  # category 0x031, subcategory 0x01


# RACP operators (GLS 1.0.1 3.4.1, Operator values 1-6) a model supports.
ALL_RACP_OPERATORS = frozenset(range(1, 7))
# All, >=, first, last: what Nordic's reference RACP server supports (sdk-nrf
# subsys/bluetooth/services/cgms/cgms_racp.c answers Operator Not Supported for <= and range).
BASIC_RACP_OPERATORS = frozenset({1, 3, 5, 6})


class DeviceKind(StrEnum):
    """Which SIG profile the device implements."""

    GLUCOSE_METER = "glucose_meter"
    BP_CUFF = "bp_cuff"
    HEART_RATE_STRAP = "heart_rate_strap"
    CGM = "cgm"
    THERMOMETER = "thermometer"
    WEIGHT_SCALE = "weight_scale"
    PULSE_OXIMETER = "pulse_oximeter"


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
    appearance: int = 0  # GAP Appearance 0x2A01 (0 = Unknown)
    oui: int = 0x00A0C9  # IEEE OUI in the DIS System ID (a made-up vendor per model)
    passkey_per_pairing: bool = False  # draws a new passkey for every pairing (else a fixed one)
    # glucose meters
    unit: Literal["mg/dL", "mmol/L"] = "mg/dL"
    base_time_utc: bool = False  # Base Time is UTC and Time Offset the local offset
    time_offset: bool = True  # sends the Time Offset field at all
    user_facing_time_filter: bool = True  # RACP filter type 2 supported (optional in GLS)
    context: bool = True  # has Glucose Measurement Context
    racp_operators: frozenset[int] = ALL_RACP_OPERATORS  # others: Operator Not Supported
    # blood-pressure cuffs
    send_all_on_connect: bool = False  # dumps its whole memory on every connection
    beurer_quirks: bool = False  # big-endian pulse/status, unflagged User ID, RFU flag bit 6
    users: int = 1
    disconnect_after_transfer: bool = False
    pressure_unit: Literal["mmHg", "kPa"] = "mmHg"
    link_timing: LinkTiming = METER_TIMING  # connection interval, packets/event, MTU, DLE


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
            appearance=Appearance.GENERIC_GLUCOSE_METER,
            oui=0x00C0DE,
            source=(
                "docs/device-profiles.md quirks 1, 10, 13, 18: Base Time is UTC and Time Offset "
                "the local "
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
            appearance=Appearance.GENERIC_GLUCOSE_METER,
            oui=0x00AC4E,
            source=(
                "docs/device-profiles.md quirk 9: PIN bonding, the meter displays the passkey, no "
                "listeners "
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
            racp_operators=BASIC_RACP_OPERATORS,
            appearance=Appearance.GENERIC_GLUCOSE_METER,
            oui=0x00B1D0,
            source=(
                "docs/device-profiles.md quirks 1 and 11: an mmol/L meter sending +180 min offsets "
                "(nordicsemi/Android-BLE-Library issue 130); talks only to its bonded host, as "
                "the A&D UA-651BLE does; answers Operand Not Supported for time filters (19) "
                "and Operator Not Supported for <= and range, as Nordic's reference RACP "
                "server does (sdk-nrf cgms_racp.c)"
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
            appearance=Appearance.ARM_BLOOD_PRESSURE,
            oui=0x00B0E1,
            source=(
                "docs/device-profiles.md quirks 7, 11, 16: two users, sends only readings not yet "
                "transferred ('deletes after transfer', "
                "derdilla/blood-pressure-monitor-fl/docs/bluetooth.md)"
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
            appearance=Appearance.ARM_BLOOD_PRESSURE,
            oui=0x00BE57,
            source=(
                "docs/device-profiles.md quirks 16 and 23: dumps its whole memory on every "
                "transfer; pulse "
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
            passkey_per_pairing=True,
            appearance=Appearance.ARM_BLOOD_PRESSURE,
            oui=0x00ADE0,
            source=(
                "docs/device-profiles.md quirk 11: sends data only to the paired host, then "
                "disconnects by "
                "itself (obniz UA651BLE README-ja.md); a new random passkey at every pairing, "
                "like the Silvercrest SBM69 (1technophile/OpenMQTTGateway issue 806)"
            ),
        ),
        DeviceModel(
            key="kpa-cuff",
            kind=DeviceKind.BP_CUFF,
            manufacturer="homevitals",
            model="BLS wrist cuff in kPa (simulated)",
            name_prefix="BPkPa",
            security="just_works",
            pressure_unit="kPa",
            appearance=Appearance.WRIST_BLOOD_PRESSURE,
            oui=0x00C1A0,
            source=(
                "BLS 1.0 3.1 / Blood Pressure Measurement flags bit 0: pressures in kPa; the "
                "obniz UA651BLE driver documents a 17.6 kPa reading (B0 F0), i.e. kPa on the "
                "air from a shipping cuff"
            ),
        ),
        DeviceModel(
            key="polar-like",
            kind=DeviceKind.HEART_RATE_STRAP,
            manufacturer="Polar Electro Oy",
            model="H10 (simulated)",
            name_prefix="Polar H10 ",
            security="just_works",
            appearance=Appearance.HEART_RATE_BELT,
            oui=0x00A0E5,
            link_timing=WEARABLE_TIMING,
            source=(
                "HRS 1.0: Heart Rate Measurement notified once a second with RR intervals and "
                "sensor contact, Body Sensor Location chest; advertised name 'Polar H10 <id>' "
                "as the Polar BLE SDK documents"
            ),
        ),
        DeviceModel(
            key="cgm-like",
            kind=DeviceKind.CGM,
            manufacturer="homevitals",
            model="CGMS sensor, 14-day (simulated)",
            name_prefix="CGM",
            security="just_works",
            appearance=Appearance.CONTINUOUS_GLUCOSE_MONITOR,
            oui=0x00C6A1,
            link_timing=WEARABLE_TIMING,
            source=(
                "CGMS 1.0.1: a measurement every 5 min with Time Offset from the Session Start "
                "Time, E2E-CRC on every record and on the Session Start Time, RACP by Time "
                "Offset (filter type 1); Nordic sdk-nrf subsys/bluetooth/services/cgms"
            ),
        ),
        DeviceModel(
            key="thermometer-like",
            kind=DeviceKind.THERMOMETER,
            manufacturer="homevitals",
            model="HTS ear thermometer (simulated)",
            name_prefix="Thermo",
            security="just_works",
            appearance=Appearance.EAR_THERMOMETER,
            oui=0x00E7E0,
            send_all_on_connect=False,
            source=(
                "HTS 1.0: Temperature Measurement 0x2A1C indicated (IEEE 11073 FLOAT, Celsius, "
                "time stamp, type ear); stored readings indicated to a bonded host on connect"
            ),
        ),
        DeviceModel(
            key="scale-like",
            kind=DeviceKind.WEIGHT_SCALE,
            manufacturer="homevitals",
            model="WSS scale (simulated)",
            name_prefix="Scale",
            security="just_works",
            appearance=Appearance.GENERIC_WEIGHT_SCALE,
            oui=0x00C0A1,
            source=(
                "WSS 1.0: Weight Measurement 0x2A9D indicated (0.005 kg resolution, time stamp); "
                "stored readings indicated to a bonded host on connect"
            ),
        ),
        DeviceModel(
            key="oximeter-like",
            kind=DeviceKind.PULSE_OXIMETER,
            manufacturer="homevitals",
            model="PLXS fingertip oximeter (simulated)",
            name_prefix="Oxi",
            security="just_works",
            appearance=Appearance.FINGERTIP_PULSE_OXIMETER,
            oui=0x00B2E5,
            link_timing=WEARABLE_TIMING,
            source=(
                "PLXS 1.0: PLX Continuous Measurement notified once a second, spot-checks "
                "indicated and stored, RACP with the 'all records' operator only"
            ),
        ),
    )
}


def system_id_for(model: DeviceModel, serial: str) -> bytes:
    """The DIS System ID 0x2A23 of a device: Manufacturer Identifier (uint40, from the serial)
    then the model's Organizationally Unique Identifier (uint24), least significant octet first
    (DIS 1.1 3.9; GATT Specification Supplement, System ID)."""
    manufacturer_id = int.from_bytes(hashlib.sha256(serial.encode()).digest()[:5], "little")
    return manufacturer_id.to_bytes(5, "little") + model.oui.to_bytes(3, "little")


DEFAULT_PASSKEY = 123456


def passkey_of(model: DeviceModel, passkey: int | None) -> int | None:
    """The passkey a device of `model` uses: `passkey` when given (a scenario or a test fixes
    it); else None (a new one per pairing) for models that draw one, the default otherwise."""
    if passkey is not None or model.passkey_per_pairing:
        return passkey
    return DEFAULT_PASSKEY


def get_model(key: str, *, where: str = "model") -> DeviceModel:
    """The model called `key`.

    Raises:
        ScenarioError: no such model (the message lists the known ones).
    """
    try:
        return MODELS[key]
    except KeyError:
        raise ScenarioError(where, f"unknown model {key!r} (known: {sorted(MODELS)})") from None
