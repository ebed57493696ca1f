"""Advertising data: build and parse the AD structures a peripheral puts on the air (pure).

Core Specification Supplement v11, Part A, section 1 (AD types); the AD type values are from
the Assigned Numbers document, section 2.3. A structure is `length | type | data`, length
counting the type octet; the legacy advertising payload holds at most 31 octets.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bumble_bleak.errors import BumbleBleakError

AD_FLAGS = 0x01
AD_INCOMPLETE_16 = 0x02
AD_COMPLETE_16 = 0x03
AD_INCOMPLETE_128 = 0x06
AD_COMPLETE_128 = 0x07
AD_SHORT_NAME = 0x08
AD_COMPLETE_NAME = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA_16 = 0x16
AD_MANUFACTURER = 0xFF
LEGACY_ADV_MAX_OCTETS = 31

# LE General Discoverable, BR/EDR not supported (Supplement Part A 1.3).
FLAGS_LE_GENERAL_DISCOVERABLE = 0x06

_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def uuid16_str(value: int) -> str:
    """A 16-bit SIG UUID in bleak's 128-bit string form."""
    return f"0000{value:04x}{_BASE_UUID_SUFFIX}"


@dataclass(frozen=True, slots=True)
class AdvertisingFields:
    """What a scanner learns from one device's AD structures."""

    local_name: str | None = None
    service_uuids: tuple[str, ...] = ()
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    tx_power: int | None = None


def build_advertising(
    *,
    local_name: str,
    service_uuids16: Sequence[int],
    manufacturer_data: Mapping[int, bytes] | None = None,
) -> bytes:
    """Encode the advertising payload of a simulated device.

    Raises:
        BumbleBleakError: the payload does not fit the 31 octets of legacy advertising.
    """
    structures: list[tuple[int, bytes]] = [(AD_FLAGS, bytes([FLAGS_LE_GENERAL_DISCOVERABLE]))]
    if service_uuids16:
        structures.append((AD_COMPLETE_16, b"".join(struct.pack("<H", u) for u in service_uuids16)))
    for company, data in (manufacturer_data or {}).items():
        structures.append((AD_MANUFACTURER, struct.pack("<H", company) + data))
    structures.append((AD_COMPLETE_NAME, local_name.encode()))
    payload = b"".join(bytes([len(d) + 1, t]) + d for t, d in structures)
    if len(payload) > LEGACY_ADV_MAX_OCTETS:
        raise BumbleBleakError(
            f"advertising payload is {len(payload)} octets, max {LEGACY_ADV_MAX_OCTETS}"
        )
    return payload


def split_structures(payload: bytes) -> list[tuple[int, bytes]]:
    """Split an advertising payload into (type, data) pairs; a zero length ends it.

    Raises:
        BumbleBleakError: a structure runs past the end of the payload.
    """
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(payload):
        length = payload[offset]
        if length == 0:
            break
        end = offset + 1 + length
        if end > len(payload):
            raise BumbleBleakError(
                f"AD structure at offset {offset} has length {length} past the end "
                f"({payload.hex()})"
            )
        out.append((payload[offset + 1], payload[offset + 2 : end]))
        offset = end
    return out


def _uuid128(data: bytes) -> str:
    return str(uuid.UUID(bytes=bytes(reversed(data))))


def parse_advertising(structures: Iterable[tuple[int, bytes]]) -> AdvertisingFields:
    """Collect the fields bleak reports from AD structures (repeats, e.g. from a scan
    response, are merged; malformed lengths inside a structure are skipped, as stacks do)."""
    name: str | None = None
    short_name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    for ad_type, data in structures:
        if ad_type == AD_COMPLETE_NAME:
            name = data.decode("utf-8", errors="replace")
        elif ad_type == AD_SHORT_NAME:
            short_name = data.decode("utf-8", errors="replace")
        elif ad_type in (AD_INCOMPLETE_16, AD_COMPLETE_16):
            for i in range(0, len(data) - 1, 2):
                uuids.append(uuid16_str(struct.unpack_from("<H", data, i)[0]))
        elif ad_type in (AD_INCOMPLETE_128, AD_COMPLETE_128):
            for i in range(0, len(data) - 15, 16):
                uuids.append(_uuid128(data[i : i + 16]))
        elif ad_type == AD_MANUFACTURER and len(data) >= 2:
            manufacturer[struct.unpack_from("<H", data)[0]] = data[2:]
        elif ad_type == AD_SERVICE_DATA_16 and len(data) >= 2:
            service_data[uuid16_str(struct.unpack_from("<H", data)[0])] = data[2:]
        elif ad_type == AD_TX_POWER and len(data) == 1:
            tx_power = struct.unpack("<b", data)[0]
    unique = tuple(dict.fromkeys(uuids))
    return AdvertisingFields(
        local_name=name if name is not None else short_name,
        service_uuids=unique,
        manufacturer_data=manufacturer,
        service_data=service_data,
        tx_power=tx_power,
    )
