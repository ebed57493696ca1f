"""Device Information Service strings and System ID 0x2A23.

Spec: SIG GATT XML for Manufacturer Name String 0x2A29, Model Number String 0x2A24, Serial
Number String 0x2A25, Hardware Revision String 0x2A27, Firmware Revision String 0x2A26 and
Software Revision String 0x2A28 (each a UTF-8 string, whole value), and System ID 0x2A23
(Manufacturer Identifier uint40 then Organizationally Unique Identifier uint24, 8 bytes).

Strings: bytes that are not UTF-8 are a `DecodeError` (field `text`); trailing NULs, which
some stacks pad with, are kept as characters so that the round trip stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, put_uint
from devices.codecs.errors import EncodeError

__all__ = [
    "FirmwareRevisionString",
    "HardwareRevisionString",
    "ManufacturerNameString",
    "ModelNumberString",
    "SerialNumberString",
    "SoftwareRevisionString",
    "SystemId",
]


class _DisString:
    """Shared decoding of the DIS UTF-8 strings."""

    __slots__ = ()
    UUID: ClassVar[int]
    text: str

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode the whole value as UTF-8. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: the bytes are not UTF-8.
        """
        r = Reader(cls.__name__, data)
        raw = r.take(r.remaining, "text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise r.fail("text", f"not UTF-8 ({exc.reason})", exc.start) from None
        return cls(text)  # type: ignore[call-arg]

    def __bytes__(self) -> bytes:
        return _utf8(self)


def _utf8(value: _DisString) -> bytes:
    try:
        return value.text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(type(value).__name__, "text", "not encodable as UTF-8") from exc


@dataclass(frozen=True, slots=True)
class ManufacturerNameString(_DisString):
    """Manufacturer Name String 0x2A29."""

    UUID: ClassVar[int] = 0x2A29
    text: str


@dataclass(frozen=True, slots=True)
class ModelNumberString(_DisString):
    """Model Number String 0x2A24."""

    UUID: ClassVar[int] = 0x2A24
    text: str


@dataclass(frozen=True, slots=True)
class SerialNumberString(_DisString):
    """Serial Number String 0x2A25."""

    UUID: ClassVar[int] = 0x2A25
    text: str


@dataclass(frozen=True, slots=True)
class HardwareRevisionString(_DisString):
    """Hardware Revision String 0x2A27."""

    UUID: ClassVar[int] = 0x2A27
    text: str


@dataclass(frozen=True, slots=True)
class FirmwareRevisionString(_DisString):
    """Firmware Revision String 0x2A26."""

    UUID: ClassVar[int] = 0x2A26
    text: str


@dataclass(frozen=True, slots=True)
class SoftwareRevisionString(_DisString):
    """Software Revision String 0x2A28."""

    UUID: ClassVar[int] = 0x2A28
    text: str


@dataclass(frozen=True, slots=True)
class SystemId:
    """System ID 0x2A23: Manufacturer Identifier (40 bits) and OUI (24 bits)."""

    UUID: ClassVar[int] = 0x2A23
    manufacturer_identifier: int
    organizationally_unique_identifier: int

    @property
    def hex(self) -> str:
        """The 8 bytes as hex, a stable device identity when no serial is exposed."""
        return bytes(self).hex()

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly 8 bytes. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: not exactly 8 bytes.
        """
        r = Reader("SystemId", data)
        manufacturer = r.uint(5, "manufacturer_identifier")
        oui = r.uint(3, "organizationally_unique_identifier")
        r.end()
        return cls(manufacturer, oui)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.manufacturer_identifier, 5, "SystemId", "manufacturer_identifier")
        put_uint(
            out,
            self.organizationally_unique_identifier,
            3,
            "SystemId",
            "organizationally_unique_identifier",
        )
        return bytes(out)
