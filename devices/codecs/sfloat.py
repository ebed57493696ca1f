"""IEEE 11073-20601 SFLOAT (medfloat16) and FLOAT (medfloat32).

Layout (IEEE 11073-20601 clause F.8; Bluetooth GSS section 2.2; docs/device-profiles.md section 1):

- SFLOAT, 16 bits: bits 15-12 a signed 4-bit base-10 exponent, bits 11-0 a signed 12-bit mantissa.
- FLOAT, 32 bits: bits 31-24 a signed 8-bit exponent, bits 23-0 a signed 24-bit mantissa.

With exponent 0, five mantissa codes are special values (NaN, NRes, +INF, -INF, reserved), kept
as `Special` members and never turned into numbers. Any exponent is accepted on decode. A value
keeps its exponent and mantissa, because one number has several encodings (5.5 is 0xC037 and
0xB226) and a decoded payload must re-encode byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import ClassVar, Self

from devices.codecs.errors import EncodeError
from devices.special import Special

__all__ = ["Float", "MedFloat16", "MedFloat32", "SFloat", "Special"]


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


class _MedFloat:
    """Shared behaviour of SFLOAT and FLOAT; subclasses set the widths and special codes."""

    __slots__ = ()
    EXPONENT_BITS: ClassVar[int]
    MANTISSA_BITS: ClassVar[int]
    SPECIALS: ClassVar[dict[int, Special]]
    exponent: int
    mantissa: int

    def _check(self) -> None:
        name = type(self).__name__
        e_max = (1 << (self.EXPONENT_BITS - 1)) - 1
        m_max = (1 << (self.MANTISSA_BITS - 1)) - 1
        if not -e_max - 1 <= self.exponent <= e_max:
            raise EncodeError(name, "exponent", f"{self.exponent} outside [{-e_max - 1}, {e_max}]")
        if not -m_max - 1 <= self.mantissa <= m_max:
            raise EncodeError(name, "mantissa", f"{self.mantissa} outside [{-m_max - 1}, {m_max}]")

    @classmethod
    def from_raw(cls, raw: int) -> Self:
        """Split a raw unsigned word into exponent and mantissa (no validation needed)."""
        m_bits = cls.MANTISSA_BITS
        mantissa = _signed(raw & ((1 << m_bits) - 1), m_bits)
        exponent = _signed((raw >> m_bits) & ((1 << cls.EXPONENT_BITS) - 1), cls.EXPONENT_BITS)
        return cls(exponent, mantissa)  # type: ignore[call-arg]

    @classmethod
    def from_special(cls, special: Special) -> Self:
        """The encoding of a special value (exponent 0, reserved mantissa)."""
        for mantissa, member in cls.SPECIALS.items():
            if member is special:
                return cls(0, mantissa)  # type: ignore[call-arg]
        raise EncodeError(
            cls.__name__, "special", f"{special!r} has no encoding"
        )  # pragma: no cover

    @classmethod
    def from_value(cls, value: float | Special, *, exponent: int = 0) -> Self:
        """Encode a physical value with the given base-10 exponent, rounding half to even.

        Raises:
            EncodeError: the value does not fit the mantissa at that exponent, is not finite,
                or its code collides with a special value.
        """
        if isinstance(value, Special):
            return cls.from_special(value)
        try:
            scaled = Decimal(repr(float(value))).scaleb(-exponent)
            mantissa = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        except (InvalidOperation, ValueError, OverflowError) as exc:
            raise EncodeError(cls.__name__, "value", f"{value!r} is not a finite number") from exc
        if exponent == 0 and mantissa in cls.SPECIALS:
            raise EncodeError(cls.__name__, "value", f"{value!r} collides with a special code")
        return cls(exponent, mantissa)  # type: ignore[call-arg]

    @property
    def raw(self) -> int:
        """The unsigned wire word."""
        m_bits = self.MANTISSA_BITS
        e_mask = (1 << self.EXPONENT_BITS) - 1
        return ((self.exponent & e_mask) << m_bits) | (self.mantissa & ((1 << m_bits) - 1))

    @property
    def special(self) -> Special | None:
        """The special value this code stands for, or None for a number."""
        return self.SPECIALS.get(self.mantissa) if self.exponent == 0 else None

    @property
    def value(self) -> float | Special:
        """The number (mantissa x 10^exponent), or the `Special` member."""
        special = self.special
        if special is not None:
            return special
        if self.exponent < 0:
            divisor: int = 10 ** (-self.exponent)
            return self.mantissa / divisor
        factor: int = 10**self.exponent
        return float(self.mantissa * factor)


@dataclass(frozen=True, slots=True)
class SFloat(_MedFloat):
    """An IEEE 11073 SFLOAT: 4-bit exponent, 12-bit mantissa, 2 bytes little-endian."""

    EXPONENT_BITS: ClassVar[int] = 4
    MANTISSA_BITS: ClassVar[int] = 12
    SPECIALS: ClassVar[dict[int, Special]] = {
        0x07FF: Special.NAN,
        -0x0800: Special.NRES,
        0x07FE: Special.POSITIVE_INFINITY,
        -0x07FE: Special.NEGATIVE_INFINITY,  # 0x0802
        -0x07FF: Special.RESERVED,  # 0x0801
    }
    exponent: int
    mantissa: int

    def __post_init__(self) -> None:
        self._check()

    def __bytes__(self) -> bytes:
        return self.raw.to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class Float(_MedFloat):
    """An IEEE 11073 FLOAT: 8-bit exponent, 24-bit mantissa, 4 bytes little-endian."""

    EXPONENT_BITS: ClassVar[int] = 8
    MANTISSA_BITS: ClassVar[int] = 24
    SPECIALS: ClassVar[dict[int, Special]] = {
        0x7FFFFF: Special.NAN,
        -0x800000: Special.NRES,
        0x7FFFFE: Special.POSITIVE_INFINITY,
        -0x7FFFFE: Special.NEGATIVE_INFINITY,  # 0x800002
        -0x7FFFFF: Special.RESERVED,  # 0x800001
    }
    exponent: int
    mantissa: int

    def __post_init__(self) -> None:
        self._check()

    def __bytes__(self) -> bytes:
        return self.raw.to_bytes(4, "little")


MedFloat16 = SFloat
MedFloat32 = Float
