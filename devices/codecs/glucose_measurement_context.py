"""Glucose Measurement Context 0x2A34 (Glucose Service, notify).

Spec: GLS v1.0.1 / SIG GATT XML `org.bluetooth.characteristic.glucose_measurement_context.xml`
(docs/device-profiles.md section 2.2). Flags: bit 0 Carbohydrate ID + Carbohydrate, bit 1 Meal, bit
2 Tester-Health, bit 3 Exercise Duration + Intensity, bit 4 Medication ID + Medication, bit 5
medication unit (0 kg, 1 L), bit 6 HbA1c, bit 7 Extended Flags. Field order: Flags, Sequence Number
u16, Extended Flags u8, Carbohydrate ID u8, Carbohydrate SFLOAT kg, Meal u8, Tester-Health u8 (low
nibble Tester, high nibble Health), Exercise Duration u16 s (0xFFFF overrun), Exercise Intensity u8
%, Medication ID u8, Medication SFLOAT (kg or L), HbA1c SFLOAT %.

Values keep the raw SFLOAT and the spec unit; nothing is rescaled (docs/device-profiles.md: Nordic
labels the same numbers grams and mg/mL).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Literal, Self

from devices.codecs._reader import Reader, forbid, open_enum, put_uint, require
from devices.codecs.errors import EncodeError
from devices.codecs.profiles import get_profile
from devices.codecs.sfloat import SFloat

__all__ = [
    "CarbohydrateId",
    "GlucoseMeasurementContext",
    "Health",
    "Meal",
    "MedicationId",
    "Tester",
]

_NAME = "GlucoseMeasurementContext"
FLAG_CARBOHYDRATE = 0x01
FLAG_MEAL = 0x02
FLAG_TESTER_HEALTH = 0x04
FLAG_EXERCISE = 0x08
FLAG_MEDICATION = 0x10
FLAG_MEDICATION_LITRES = 0x20
FLAG_HBA1C = 0x40
FLAG_EXTENDED = 0x80
EXERCISE_DURATION_OVERRUN = 0xFFFF
ISENS_KETONE_MEAL = 6


class CarbohydrateId(IntEnum):
    """Carbohydrate ID; other values stay ints."""

    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(IntEnum):
    """Meal; other values are RFU and stay ints (the `isens` profile reads 6 as ketone)."""

    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class Tester(IntEnum):
    """Tester (low nibble of Tester-Health)."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(IntEnum):
    """Health (high nibble of Tester-Health)."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(IntEnum):
    """Medication ID; other values stay ints."""

    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """Context for the Glucose Measurement with the same sequence number. Flags kept as sent."""

    UUID: ClassVar[int] = 0x2A34
    flags: int
    sequence_number: int
    extended_flags: int | None = None
    carbohydrate_id: CarbohydrateId | int | None = None
    carbohydrate: SFloat | None = None
    meal: Meal | int | None = None
    tester: Tester | int | None = None
    health: Health | int | None = None
    exercise_duration_s: int | None = None
    exercise_intensity_pct: int | None = None
    medication_id: MedicationId | int | None = None
    medication: SFloat | None = None
    hba1c_pct: SFloat | None = None
    profile: str | None = None

    @property
    def medication_unit(self) -> Literal["kg", "L"]:
        """Flag bit 5: the unit of `medication` as the spec writes it."""
        return "L" if self.flags & FLAG_MEDICATION_LITRES else "kg"

    @property
    def is_ketone(self) -> bool:
        """True when decoded under `isens` with Meal 6: the measurement is blood ketone."""
        quirks = get_profile(self.profile)
        return quirks is not None and quirks.meal_6_is_ketone and self.meal == ISENS_KETONE_MEAL

    @classmethod
    def build(
        cls,
        *,
        sequence_number: int,
        extended_flags: int | None = None,
        carbohydrate_id: CarbohydrateId | int | None = None,
        carbohydrate: SFloat | None = None,
        meal: Meal | int | None = None,
        tester: Tester | int | None = None,
        health: Health | int | None = None,
        exercise_duration_s: int | None = None,
        exercise_intensity_pct: int | None = None,
        medication_id: MedicationId | int | None = None,
        medication: SFloat | None = None,
        medication_unit: Literal["kg", "L"] = "kg",
        hba1c_pct: SFloat | None = None,
    ) -> Self:
        """A context with the flags worked out from the fields given (pairs go together).

        Raises:
            EncodeError: half of a pair given, or a value out of range.
        """
        pairs = (
            ("carbohydrate", carbohydrate_id, carbohydrate, FLAG_CARBOHYDRATE),
            ("tester_health", tester, health, FLAG_TESTER_HEALTH),
            ("exercise", exercise_duration_s, exercise_intensity_pct, FLAG_EXERCISE),
            ("medication", medication_id, medication, FLAG_MEDICATION),
        )
        flags = FLAG_MEDICATION_LITRES if medication_unit == "L" else 0
        for name, first, second, bit in pairs:
            if (first is None) != (second is None):
                raise EncodeError(_NAME, name, "both parts of the pair are needed")
            flags |= bit if first is not None else 0
        flags |= FLAG_MEAL if meal is not None else 0
        flags |= FLAG_HBA1C if hba1c_pct is not None else 0
        flags |= FLAG_EXTENDED if extended_flags is not None else 0
        made = cls(
            flags,
            sequence_number,
            extended_flags,
            carbohydrate_id,
            carbohydrate,
            meal,
            tester,
            health,
            exercise_duration_s,
            exercise_intensity_pct,
            medication_id,
            medication,
            hba1c_pct,
        )
        bytes(made)
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a notification.

        Raises:
            DecodeError: truncated or bytes left over.
            UnknownProfileError: `profile` names no profile.
        """
        quirks = get_profile(profile)
        r = Reader(_NAME, data)
        flags = r.u8("flags")
        seq = r.u16("sequence_number")
        ext = r.u8("extended_flags") if flags & FLAG_EXTENDED else None
        carb_id = carb = meal = tester = health = None
        duration = intensity = med_id = med = hba1c = None
        if flags & FLAG_CARBOHYDRATE:
            carb_id = open_enum(CarbohydrateId, r.u8("carbohydrate_id"))
            carb = r.sfloat("carbohydrate")
        if flags & FLAG_MEAL:
            meal = open_enum(Meal, r.u8("meal"))
        if flags & FLAG_TESTER_HEALTH:
            nibbles = r.u8("tester_health")
            tester = open_enum(Tester, nibbles & 0x0F)
            health = open_enum(Health, nibbles >> 4)
        if flags & FLAG_EXERCISE:
            duration = r.u16("exercise_duration_s")
            intensity = r.u8("exercise_intensity_pct")
        if flags & FLAG_MEDICATION:
            med_id = open_enum(MedicationId, r.u8("medication_id"))
            med = r.sfloat("medication")
        if flags & FLAG_HBA1C:
            hba1c = r.sfloat("hba1c_pct")
        r.end()
        return cls(
            flags,
            seq,
            ext,
            carb_id,
            carb,
            meal,
            tester,
            health,
            duration,
            intensity,
            med_id,
            med,
            hba1c,
            None if quirks is None else quirks.name,
        )

    def _put(self, out: bytearray, flag: int, name: str, size: int) -> None:
        value = getattr(self, name)
        if not self.flags & flag:
            forbid(value, _NAME, name)
        elif isinstance(value, SFloat):
            out += bytes(value)
        else:
            put_uint(out, require(value, _NAME, name), size, _NAME, name)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        put_uint(out, self.sequence_number, 2, _NAME, "sequence_number")
        self._put(out, FLAG_EXTENDED, "extended_flags", 1)
        self._put(out, FLAG_CARBOHYDRATE, "carbohydrate_id", 1)
        self._put(out, FLAG_CARBOHYDRATE, "carbohydrate", 2)
        self._put(out, FLAG_MEAL, "meal", 1)
        if self.flags & FLAG_TESTER_HEALTH:
            tester = require(self.tester, _NAME, "tester")
            health = require(self.health, _NAME, "health")
            if not (0 <= tester <= 15 and 0 <= health <= 15):
                raise EncodeError(_NAME, "tester_health", "each nibble must be 0-15")
            out.append(health << 4 | tester)
        else:
            forbid(self.tester, _NAME, "tester")
            forbid(self.health, _NAME, "health")
        self._put(out, FLAG_EXERCISE, "exercise_duration_s", 2)
        self._put(out, FLAG_EXERCISE, "exercise_intensity_pct", 1)
        self._put(out, FLAG_MEDICATION, "medication_id", 1)
        self._put(out, FLAG_MEDICATION, "medication", 2)
        self._put(out, FLAG_HBA1C, "hba1c_pct", 2)
        return bytes(out)
