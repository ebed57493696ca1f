"""IEEE 11073-20601 special values.

SFLOAT and FLOAT reserve mantissa codes for values that are not numbers (IEEE 11073-20601
clause F.8, repeated in the Bluetooth GSS). Meters report "HI" and "LO" as +INF and -INF; a
reading that carries one of these keeps it as the enum member, never as a float.
"""

from __future__ import annotations

from enum import StrEnum


class Special(StrEnum):
    """A special (non-numeric) IEEE 11073 value, with its JSON spelling as the value."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"
