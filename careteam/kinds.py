"""The kinds of patient data a consent grant names (pure).

A grant permits one or more data kinds; every read and every disclosure names the kind it
touches, so a team sees only what was granted (minimum necessary). To add a kind (a wearable's
``heart_rate``, ``spo2``...), add a line to `DATA_KINDS` and, when readings of a
`devices.Kind` carry it, to `READING_KIND_TO_DATA_KIND`; no table changes (grants store kind
names as text).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from careteam.errors import InvalidFieldError

# name -> what it covers, in words (shown on consent forms and in `audit show`).
DATA_KINDS: Final[dict[str, str]] = {
    "glucose": "blood glucose readings",
    "blood_pressure": "blood pressure and pulse readings",
    "alerts": "alerts raised from the readings (and their webhooks)",
    "devices": "the home devices and hub (serial numbers, sync times)",
}

# devices.Kind value -> data kind (kinds not listed here are not yet readable by care teams).
READING_KIND_TO_DATA_KIND: Final[dict[str, str]] = {
    "glucose": "glucose",
    "ketone": "glucose",
    "blood_pressure": "blood_pressure",
}


def parse_data_kinds(values: Iterable[str]) -> tuple[str, ...]:
    """Validate data kind names: at least one, each known; returns them deduplicated, sorted.

    Raises:
        InvalidFieldError: none given, or an unknown kind (field ``"data_kinds"``).
    """
    found: set[str] = set()
    for value in values:
        name = value.strip()
        if name not in DATA_KINDS:
            known = ", ".join(DATA_KINDS)
            raise InvalidFieldError("data_kinds", f"{value!r} is not one of {known}")
        found.add(name)
    if not found:
        raise InvalidFieldError("data_kinds", "name at least one data kind")
    return tuple(sorted(found))
