"""Code systems, profiles and extension URLs the FHIR views use (pure constants)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# FHIR R4 StatisticsCode: what a summary value is (average, minimum, maximum, count, ...).
OBSERVATION_STATISTICS: Final = "http://hl7.org/fhir/observation-statistics"
UUID_URN: Final = "urn:ietf:rfc:3986"

VITAL_SIGNS_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BP_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/bp"
HEART_RATE_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/heartrate"
PHD_NUMERIC: Final = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation"
PHD_COMPOUND: Final = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation"
# Core extension the PHD IG uses for the gateway (PHG) that forwarded a measurement.
GATEWAY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"

# homevitals' own identifiers and extensions.
HV: Final = "https://homevitals.org/fhir"
PATIENT_ID_SYSTEM: Final = f"{HV}/sid/patient-id"
MEMBER_ID_SYSTEM: Final = f"{HV}/sid/member-id"
TEAM_ID_SYSTEM: Final = f"{HV}/sid/team-id"
GATEWAY_ID_SYSTEM: Final = f"{HV}/sid/gateway-id"
DEVICE_ID_SYSTEM: Final = f"{HV}/sid/device-id"
ALERT_ID_SYSTEM: Final = f"{HV}/sid/alert-id"
RULE_SYSTEM: Final = f"{HV}/CodeSystem/alert-rule"
STATUS_FLAG_SYSTEM: Final = f"{HV}/CodeSystem/measurement-status"
DEVICE_CLOCK_EXTENSION: Final = f"{HV}/StructureDefinition/device-clock"
CONTEXT_EXTENSION: Final = f"{HV}/StructureDefinition/reading-context"
ORIGINAL_EXTENSION: Final = f"{HV}/StructureDefinition/original-value"


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding."""

    system: str
    code: str
    display: str

    def json(self) -> dict[str, object]:
        """The Coding's JSON."""
        return {"system": self.system, "code": self.code, "display": self.display}


def concept(*codings: Coding, text: str | None = None) -> dict[str, object]:
    """A CodeableConcept of `codings`."""
    out: dict[str, object] = {"coding": [c.json() for c in codings]}
    if text is not None:
        out["text"] = text
    return out


VITAL_SIGNS: Final = Coding(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")
LABORATORY: Final = Coding(OBSERVATION_CATEGORY, "laboratory", "Laboratory")
