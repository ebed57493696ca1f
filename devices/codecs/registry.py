"""UUID -> codec registry and `decode`, the one entry point the gateway needs.

A characteristic UUID is an int (``0x2A18``) or a string: a bleak-style 128-bit UUID on the
Bluetooth base (``"00002a18-0000-1000-8000-00805f9b34fb"``) or a short form (``"2a18"``,
``"0x2A18"``).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from devices.codecs.errors import DecodeError
from devices.codecs.profiles import get_profile

__all__ = ["Characteristic", "Decoder", "decode", "register", "uuid16"]

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


class Characteristic(Protocol):
    """What every codec dataclass offers."""

    UUID: ClassVar[int]

    def __bytes__(self) -> bytes: ...


class Decoder(Protocol):
    """A codec's `from_bytes`."""

    def __call__(self, data: bytes, *, profile: str | None = None) -> Characteristic: ...


REGISTRY: dict[int, Decoder] = {}
NAMES: dict[int, str] = {}


def register(uuid: int, name: str, decoder: Decoder) -> None:
    """Add a codec (done once per characteristic by `devices.codecs`)."""
    REGISTRY[uuid] = decoder
    NAMES[uuid] = name


def uuid16(uuid: int | str) -> int:
    """The 16-bit assigned number of a characteristic UUID.

    Raises:
        DecodeError: the UUID is malformed or not on the Bluetooth base (field ``"$uuid"``).
    """
    if isinstance(uuid, int) and not isinstance(uuid, bool):
        if 0 <= uuid <= 0xFFFF:
            return uuid
    elif isinstance(uuid, str):
        text = uuid.strip().lower()
        if len(text) == 36 and text.endswith(_BASE_SUFFIX) and text.startswith("0000"):
            text = text[4:8]
        elif text.startswith("0x"):
            text = text[2:]
        if 1 <= len(text) <= 4 and all(c in "0123456789abcdef" for c in text):
            return int(text, 16)
    raise DecodeError(str(uuid), "$uuid", 0, "", "not a 16-bit Bluetooth SIG characteristic UUID")


def decode(
    uuid: int | str, data: bytes | bytearray | memoryview, *, profile: str | None = None
) -> Characteristic:
    """Decode `data` as the characteristic `uuid`; `profile` names a quirk profile (None: strict).

    Raises:
        DecodeError: the payload is invalid, or no codec exists for the UUID.
        UnknownProfileError: `profile` names no profile.
    """
    get_profile(profile)  # an unknown name fails here, for every characteristic alike
    number = uuid16(uuid)
    decoder = REGISTRY.get(number)
    if decoder is None:
        raise DecodeError(
            f"0x{number:04X}", "$uuid", 0, bytes(data).hex(), "no codec for this characteristic"
        )
    return decoder(bytes(data), profile=profile)
