"""Care-plan conditions that change a patient's targets, and the codes that name them.

A care plan (and later the patient's record) lists conditions as codes. The rules need to know
five of them: the comorbidities for which the ESH-style home protocol sets the lower goal of
130/80 mmHg (PMC8109940, table 2): diabetes, coronary heart disease, chronic kidney disease;
heart failure, for which daily weights are watched for fluid retention (`weight.gain_hf_3d`);
COPD, whose patients at risk of hypercapnia have the lower SpO2 target of 88-92 % (BTS 2017,
`spo2.low_sustained`).
`normalize` maps a code to one of these, or None for any other condition (kept in the record,
no effect on targets). Accepted spellings:

- the patient record's codes (`careteam.conditions`): `diabetes`, `diabetes_type_1`,
  `diabetes_type_2`, `coronary_heart_disease`, `chronic_kidney_disease`, `heart_failure`,
  `copd` (and `chd`, `ckd`, `diabetes_mellitus`, `hypercapnic_respiratory_failure`); the
  record's other conditions (hypertension, gestational diabetes) set no target here;
- SNOMED CT (`http://snomed.info/sct|CODE` or `snomed:CODE`): 73211009 diabetes mellitus,
  46635009 type 1, 44054006 type 2; 414545008 ischaemic heart disease, 53741008 coronary
  arteriosclerosis; 709044004 chronic kidney disease; 84114007 heart failure; 13645005 COPD
  (the listed concepts only: descendants need a terminology server);
- ICD-10 (`http://hl7.org/fhir/sid/icd-10|CODE` or `icd10:CODE`): E10-E14 diabetes mellitus,
  I20-I25 ischaemic heart diseases, N18 chronic kidney disease, I50 heart failure, J44 COPD.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

DIABETES: Final = "diabetes"
CORONARY_HEART_DISEASE: Final = "coronary_heart_disease"
CHRONIC_KIDNEY_DISEASE: Final = "chronic_kidney_disease"
HEART_FAILURE: Final = "heart_failure"
COPD: Final = "copd"

_KEYWORDS: Final = {
    "diabetes": DIABETES,
    "diabetes_mellitus": DIABETES,
    "diabetes_type_1": DIABETES,
    "diabetes_type_2": DIABETES,
    "coronary_heart_disease": CORONARY_HEART_DISEASE,
    "chd": CORONARY_HEART_DISEASE,
    "chronic_kidney_disease": CHRONIC_KIDNEY_DISEASE,
    "ckd": CHRONIC_KIDNEY_DISEASE,
    "heart_failure": HEART_FAILURE,
    "copd": COPD,
    "hypercapnic_respiratory_failure": COPD,
}
_SNOMED: Final = {
    "73211009": DIABETES,
    "46635009": DIABETES,
    "44054006": DIABETES,
    "414545008": CORONARY_HEART_DISEASE,
    "53741008": CORONARY_HEART_DISEASE,
    "709044004": CHRONIC_KIDNEY_DISEASE,
    "84114007": HEART_FAILURE,
    "13645005": COPD,
}
_SYSTEMS: Final = {
    "http://snomed.info/sct": "snomed",
    "snomed": "snomed",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
    "icd10": "icd10",
    "icd-10": "icd10",
}


def _icd10(code: str) -> str | None:
    head = code.upper().replace(".", "")[:3]
    if len(head) < 3 or not head[1:].isdigit():
        return None
    number = int(head[1:])
    if head[0] == "E" and 10 <= number <= 14:
        return DIABETES
    if head[0] == "I" and 20 <= number <= 25:
        return CORONARY_HEART_DISEASE
    if head[0] == "N" and number == 18:
        return CHRONIC_KIDNEY_DISEASE
    if head[0] == "I" and number == 50:
        return HEART_FAILURE
    if head[0] == "J" and number == 44:
        return COPD
    return None


def normalize(code: str) -> str | None:
    """The target-relevant condition `code` names, or None (see the module doc)."""
    text = code.strip()
    for separator in ("|", ":"):
        system, sep, value = text.rpartition(separator)
        if sep and system.lower() in _SYSTEMS:
            kind = _SYSTEMS[system.lower()]
            return _SNOMED.get(value.strip()) if kind == "snomed" else _icd10(value.strip())
    return _KEYWORDS.get(text.lower())


def normalize_all(codes: Iterable[str]) -> frozenset[str]:
    """The target-relevant conditions among `codes`."""
    return frozenset(c for c in (normalize(code) for code in codes) if c is not None)
