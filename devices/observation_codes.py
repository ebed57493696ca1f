"""What each reading kind's values are called in clinical terminologies (pure data).

For the FHIR views (the `api` package) and anyone exporting readings: per kind and value, the
LOINC code (and the IEEE 11073-10101 MDC code where the Personal Health Device profiles use
one), the UCUM unit of the canonical value, and the FHIR R4 vital-signs profile it conforms to.
CGM summaries (time in ranges, mean, CV over a reporting period) use the codes of the HL7 FHIR
Continuous Glucose Monitoring IG 1.0.0 (`http://hl7.org/fhir/uv/cgm`, ConceptMap
CGMSummaryToLoinc): LOINC where it maps one, else the IG's own summary code system.

Sources: LOINC 8867-4 Heart rate, 59408-5 Oxygen saturation in Arterial blood by Pulse
oximetry, 2708-6 Oxygen saturation in Arterial blood, 8310-5 Body temperature, 29463-7 Body
weight, 99504-3 / 105272-9 Glucose [Mass/volume] / [Moles/volume] in Interstitial fluid (the
CGM IG's sensor reading profiles); FHIR R4 Vital Signs profiles (hl7.org/fhir/R4/observation-
vitalsigns.html); MDC codes from IEEE 11073-10101 as used by the HL7 PHD IG.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from devices.reading import Kind

LOINC: Final = "http://loinc.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
UCUM: Final = "http://unitsofmeasure.org"
CGM_SUMMARY_SYSTEM: Final = "http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary"
VITAL_SIGNS: Final = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True, slots=True)
class Code:
    """One coding: system, code, display."""

    system: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class ValueCoding:
    """How one canonical value of a kind is coded: codes (first is primary) and its UCUM unit."""

    value: str
    codes: tuple[Code, ...]
    ucum: str
    profile: str | None = None


def _loinc(code: str, display: str) -> Code:
    return Code(LOINC, code, display)


HEART_RATE_CODES: Final = (
    _loinc("8867-4", "Heart rate"),
    Code(MDC, "149546", "MDC_PULS_RATE_NON_INV"),
)
SPO2_CODES: Final = (
    _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    _loinc("2708-6", "Oxygen saturation in Arterial blood"),
    Code(MDC, "150456", "MDC_PULS_OXIM_SAT_O2"),
)
BODY_TEMPERATURE_CODES: Final = (
    _loinc("8310-5", "Body temperature"),
    Code(MDC, "150364", "MDC_TEMP_BODY"),
)
BODY_WEIGHT_CODES: Final = (
    _loinc("29463-7", "Body weight"),
    Code(MDC, "188736", "MDC_MASS_BODY_ACTUAL"),
)
CGM_GLUCOSE_CODES: Final = (_loinc("105272-9", "Glucose [Moles/volume] in Interstitial fluid"),)
CGM_GLUCOSE_MASS_CODES: Final = (_loinc("99504-3", "Glucose [Mass/volume] in Interstitial fluid"),)

# The primary value of each wearable kind: what an Observation's valueQuantity carries.
KIND_CODINGS: Final[Mapping[Kind, tuple[ValueCoding, ...]]] = {
    Kind.HEART_RATE: (
        ValueCoding("heart_rate_per_min", HEART_RATE_CODES, "/min", VITAL_SIGNS + "heartrate"),
    ),
    Kind.SPO2: (
        ValueCoding("spo2_pct", SPO2_CODES, "%", VITAL_SIGNS + "oxygensat"),
        ValueCoding("pulse_per_min", HEART_RATE_CODES, "/min", VITAL_SIGNS + "heartrate"),
    ),
    Kind.BODY_TEMPERATURE: (
        ValueCoding("body_temperature_c", BODY_TEMPERATURE_CODES, "Cel", VITAL_SIGNS + "bodytemp"),
    ),
    Kind.BODY_WEIGHT: (
        ValueCoding("body_weight_kg", BODY_WEIGHT_CODES, "kg", VITAL_SIGNS + "bodyweight"),
    ),
    Kind.CGM_GLUCOSE: (ValueCoding("glucose_mmol_l", CGM_GLUCOSE_CODES, "mmol/L"),),
}

# Statistics of a per-minute summary (min, max, count) ride along as components with these
# names; FHIR's Observation.component carries them under the value's own code.
SUMMARY_STATISTICS: Final[Mapping[str, str]] = {
    "heart_rate_lowest_per_min": "minimum",
    "heart_rate_highest_per_min": "maximum",
    "spo2_lowest_pct": "minimum",
    "spo2_highest_pct": "maximum",
    "sample_count": "count",
}


def _cgm(code: str, display: str, loinc: Code | None = None) -> tuple[Code, ...]:
    own = Code(CGM_SUMMARY_SYSTEM, code, display)
    return (own,) if loinc is None else (loinc, own)


# CGM summary over a reporting period (HL7 CGM IG 1.0.0, ConceptMap CGMSummaryToLoinc).
CGM_SUMMARY_CODES: Final[Mapping[str, tuple[tuple[Code, ...], str]]] = {
    "cgm_summary": (
        _cgm("cgm-summary", "CGM Summary Report", _loinc("104643-2", "CGM summary panel")),
        "",
    ),
    "mean_glucose_mmol_l": (
        _cgm(
            "mean-glucose-moles-per-volume",
            "Mean Glucose (Moles per Volume)",
            _loinc("105273-7", "Glucose [Moles/volume] in Reporting Period mean ISF"),
        ),
        "mmol/L",
    ),
    "time_very_low_pct": (
        _cgm(
            "time-in-very-low",
            "Time in Very Low Range (%)",
            _loinc("104642-4", "Time below range, very low in Reporting Period Interstitial fluid"),
        ),
        "%",
    ),
    "time_low_pct": (_cgm("time-in-low", "Time in Low Range (%)"), "%"),
    "time_in_range_pct": (_cgm("time-in-target", "Time in Target Range (%)"), "%"),
    "time_high_pct": (_cgm("time-in-high", "Time in High Range (%)"), "%"),
    "time_very_high_pct": (_cgm("time-in-very-high", "Time in Very High Range (%)"), "%"),
    "cv_pct": (_cgm("cv", "Coefficient of Variation (CV)"), "%"),
    "gmi_pct": (_cgm("gmi", "Glucose Management Indicator (GMI)"), "%"),
    "sensor_active_pct": (_cgm("sensor-active-percentage", "Sensor Active Percentage"), "%"),
    "days_of_wear": (_cgm("days-of-wear", "Days of Wear"), "d"),
}
