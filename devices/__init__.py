"""What devices say and mean: codecs, the canonical reading, units, record-transfer sessions.

This package is the pure core: stdlib (and numpy where it helps) only, no I/O, no clock.
"""

from devices.codecs.errors import DecodeError
from devices.errors import DevicesError, ReadingValidationError
from devices.reading import (
    DeviceInfo,
    Kind,
    OriginalValue,
    Reading,
    device_id_for,
    reading_from_json,
    reading_id_for,
    reading_to_json,
)
from devices.special import Special

__all__ = [
    "DecodeError",
    "DeviceInfo",
    "DevicesError",
    "Kind",
    "OriginalValue",
    "Reading",
    "ReadingValidationError",
    "Special",
    "device_id_for",
    "reading_from_json",
    "reading_id_for",
    "reading_to_json",
]
