"""Patient records: validation of what a care team types in (pure).

The record identifies a patient by `patient_id` (the id readings and alerts carry), holds the
name the care team uses, the short label a household hub shows on its pairing page (initials or
a first name: the hub never shows more), the patient's IANA time zone (protocol slots and the
patient's own audit view use local time), the care-plan conditions and the language the patient
reads.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from careteam.conditions import parse_conditions
from careteam.errors import InvalidFieldError

PATIENT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LANGUAGES: Final = ("en", "zh")


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """What the record knows about a patient (readers return this)."""

    patient_id: str
    display_name: str
    short_name: str
    timezone: str
    conditions: tuple[str, ...]
    language: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PatientCarePlan:
    """What the rules engine needs per patient: local time zone and conditions."""

    patient_id: str
    timezone: str
    conditions: tuple[str, ...]


def text(field: str, value: str, max_len: int = 200) -> str:
    """A stripped, non-empty text of at most `max_len` characters.

    Raises:
        InvalidFieldError: empty or too long (naming `field`).
    """
    value = value.strip()
    if not value or len(value) > max_len:
        raise InvalidFieldError(field, f"must be 1 to {max_len} characters")
    return value


def patient_id(value: str) -> str:
    """Validate a patient id (letters, digits, ``.``, ``_``, ``-``; at most 64).

    Raises:
        InvalidFieldError: field ``"patient_id"``.
    """
    if not PATIENT_ID.fullmatch(value):
        raise InvalidFieldError(
            "patient_id", "must be 1 to 64 letters, digits, '.', '_' or '-' (not first)"
        )
    return value


def timezone(value: str) -> str:
    """Validate an IANA time zone name (``Asia/Shanghai``) against the system's zone data.

    Raises:
        InvalidFieldError: field ``"timezone"``.
    """
    name = value.strip()
    if not name or name.startswith("/") or ".." in name:
        raise InvalidFieldError("timezone", f"{value!r} is not an IANA time zone name")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidFieldError("timezone", f"{value!r} is not an IANA time zone name") from exc
    return name


def language(value: str) -> str:
    """Validate the patient's language (``en`` or ``zh``).

    Raises:
        InvalidFieldError: field ``"language"``.
    """
    if value not in LANGUAGES:
        raise InvalidFieldError("language", f"must be one of {', '.join(LANGUAGES)}")
    return value


def short_name_from(display_name: str) -> str:
    """Initials of a name (``"Wang Li"`` -> ``"W. L."``; a CJK name keeps its first character)."""
    parts = display_name.split()
    if len(parts) == 1 and not parts[0].isascii():
        return parts[0][0] + "*" * (len(parts[0]) - 1)
    return " ".join(f"{p[0].upper()}." for p in parts)


def validate_conditions(values: Iterable[str]) -> tuple[str, ...]:
    """See `careteam.conditions.parse_conditions`."""
    return parse_conditions(values)
