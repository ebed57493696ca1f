"""Care-plan conditions of a patient, as codes (pure).

A patient record lists the chronic conditions the care plan follows, so rules can be chosen and
tuned per patient. Each condition has a short stable code used in the record and in settings,
with its SNOMED CT concept and ICD-10 category for export (FHIR ``Condition.code``). Add a
condition by adding a line here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from careteam.errors import InvalidFieldError


@dataclass(frozen=True, slots=True)
class Condition:
    """One coded condition."""

    code: str
    display: str
    snomed_ct: str
    icd10: str


CONDITIONS: Final[dict[str, Condition]] = {
    c.code: c
    for c in (
        Condition("diabetes", "Diabetes mellitus (type not recorded)", "73211009", "E14"),
        Condition("diabetes_type_1", "Type 1 diabetes mellitus", "46635009", "E10"),
        Condition("diabetes_type_2", "Type 2 diabetes mellitus", "44054006", "E11"),
        Condition("gestational_diabetes", "Gestational diabetes", "11687002", "O24.4"),
        Condition("hypertension", "Hypertensive disorder", "38341003", "I10"),
        Condition("coronary_heart_disease", "Coronary heart disease", "53741008", "I25"),
        Condition("heart_failure", "Heart failure", "84114007", "I50"),
        Condition("chronic_kidney_disease", "Chronic kidney disease", "709044004", "N18"),
        Condition("copd", "Chronic obstructive pulmonary disease", "13645005", "J44"),
    )
}


def parse_conditions(values: Iterable[str]) -> tuple[str, ...]:
    """Validate condition codes; returns them deduplicated and sorted (none is allowed).

    Raises:
        InvalidFieldError: an unknown code (field ``"conditions"``).
    """
    found: set[str] = set()
    for value in values:
        code = value.strip()
        if code not in CONDITIONS:
            known = ", ".join(CONDITIONS)
            raise InvalidFieldError("conditions", f"{value!r} is not one of {known}")
        found.add(code)
    return tuple(sorted(found))
