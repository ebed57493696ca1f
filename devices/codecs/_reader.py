"""Checked reads and writes of little-endian fields, shared by every codec module.

`Reader` checks the length before every read and raises `DecodeError` naming the
characteristic, the field, the offset and the payload hex; nothing else escapes it. The `put_*`
helpers range-check a value before writing it and raise `EncodeError` naming the field.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from devices.codecs.errors import DecodeError, EncodeError
from devices.codecs.sfloat import Float, SFloat

T = TypeVar("T")


class Reader:
    """A cursor over an untrusted payload."""

    __slots__ = ("characteristic", "data", "offset")

    def __init__(self, characteristic: str, data: bytes | bytearray | memoryview) -> None:
        self.characteristic = characteristic
        self.data = bytes(data)
        self.offset = 0

    def fail(self, field: str, reason: str, offset: int | None = None) -> DecodeError:
        """Build (not raise) the error for `field`, at the cursor unless `offset` is given."""
        where = self.offset if offset is None else offset
        return DecodeError(self.characteristic, field, where, self.data.hex(), reason)

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self.data) - self.offset

    def take(self, size: int, field: str) -> bytes:
        """Read `size` raw bytes.

        Raises:
            DecodeError: fewer than `size` bytes are left.
        """
        if self.remaining < size:
            raise self.fail(field, f"needs {size} byte(s), {self.remaining} left")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, field: str, *, big_endian: bool = False) -> int:
        """Read an unsigned integer of `size` bytes (little-endian unless told).

        Raises:
            DecodeError: the payload is too short.
        """
        return int.from_bytes(self.take(size, field), "big" if big_endian else "little")

    def u8(self, field: str) -> int:
        """Read a uint8. Raises: DecodeError when truncated."""
        if self.offset >= len(self.data):
            raise self.fail(field, "needs 1 byte(s), 0 left")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def u16(self, field: str) -> int:
        """Read a little-endian uint16. Raises: DecodeError when truncated."""
        return self.uint(2, field)

    def s16(self, field: str) -> int:
        """Read a little-endian sint16. Raises: DecodeError when truncated."""
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def sfloat(self, field: str, *, big_endian: bool = False) -> SFloat:
        """Read an SFLOAT. Raises: DecodeError when truncated."""
        return SFloat.from_raw(self.uint(2, field, big_endian=big_endian))

    def float32(self, field: str) -> Float:
        """Read a FLOAT. Raises: DecodeError when truncated."""
        return Float.from_raw(self.uint(4, field))

    def end(self) -> None:
        """Strict mode: every byte must belong to a flagged field.

        Raises:
            DecodeError: bytes are left over (field ``"$trailing"``).
        """
        if self.remaining:
            raise self.fail("$trailing", f"{self.remaining} byte(s) left after the last field")


def put_uint(out: bytearray, value: int, size: int, characteristic: str, field: str) -> None:
    """Append `value` as an unsigned little-endian integer of `size` bytes.

    Raises:
        EncodeError: the value is negative or too large for `size` bytes.
    """
    if not 0 <= value < 1 << (8 * size):
        raise EncodeError(characteristic, field, f"{value} does not fit uint{8 * size}")
    out += value.to_bytes(size, "little")


def put_s16(out: bytearray, value: int, characteristic: str, field: str) -> None:
    """Append `value` as a sint16.

    Raises:
        EncodeError: the value is outside [-32768, 32767].
    """
    if not -0x8000 <= value <= 0x7FFF:
        raise EncodeError(characteristic, field, f"{value} does not fit sint16")
    out += value.to_bytes(2, "little", signed=True)


def require(value: T | None, characteristic: str, field: str) -> T:
    """Return `value`, which the flags say is present.

    Raises:
        EncodeError: the flags announce the field but it is None.
    """
    if value is None:
        raise EncodeError(characteristic, field, "flagged present but missing")
    return value


def forbid(value: object, characteristic: str, field: str) -> None:
    """Check a field that the flags say is absent.

    Raises:
        EncodeError: the field has a value although its flag is clear.
    """
    if value is not None:
        raise EncodeError(characteristic, field, "has a value but its flag is clear")


E = TypeVar("E", bound=IntEnum)


def open_enum(enum: type[E], value: int) -> E | int:
    """The enum member for a device code, or the bare int when the code is unknown (open enum)."""
    try:
        return enum(value)
    except ValueError:
        return value
