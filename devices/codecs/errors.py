"""Errors raised by the Bluetooth SIG codecs.

`DecodeError` is the only exception a decoder lets out on untrusted bytes; `EncodeError` is raised
when a value cannot be written in the wire form asked for (a builder or `__bytes__` misuse).
"""

from __future__ import annotations

from devices.errors import DevicesError


class DecodeError(DevicesError, ValueError):
    """A payload did not decode as the characteristic it claims to be.

    Attributes:
        characteristic: spec name of the characteristic (``"GlucoseMeasurement"``).
        field: the field being read when the payload broke (``"base_time"``, ``"$trailing"``).
        offset: byte offset of that field in the payload.
        hex: the whole payload in hex, kept for quarantine and bug reports.
        reason: what is wrong, in words.
    """

    def __init__(self, characteristic: str, field: str, offset: int, hex: str, reason: str) -> None:
        super().__init__(f"{characteristic}.{field} at byte {offset}: {reason} (payload {hex})")
        self.characteristic = characteristic
        self.field = field
        self.offset = offset
        self.hex = hex
        self.reason = reason

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str, str, int, str, str]]:
        return (
            type(self),
            (self.characteristic, self.field, self.offset, self.hex, self.reason),
        )


class EncodeError(DevicesError, ValueError):
    """A value cannot be encoded in the requested wire form.

    Attributes:
        characteristic: spec name of the characteristic or type being encoded.
        field: the offending field.
        reason: what is wrong, in words.
    """

    def __init__(self, characteristic: str, field: str, reason: str) -> None:
        super().__init__(f"{characteristic}.{field}: {reason}")
        self.characteristic = characteristic
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[EncodeError], tuple[str, str, str]]:
        return (type(self), (self.characteristic, self.field, self.reason))


class UnknownProfileError(DevicesError, LookupError):
    """A quirk profile name that no profile has.

    Attributes:
        profile: the name asked for.
        known: the names that exist.
    """

    def __init__(self, profile: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown quirk profile {profile!r}; known: {', '.join(known)}")
        self.profile = profile
        self.known = known
