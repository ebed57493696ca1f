"""Readings as FHIR Observations (pure), following the vital-signs profile and the HL7 PHD IG.

Table-driven: `VIEWS` lists, per reading kind, the Observations a reading becomes. A blood
pressure reading is a panel (LOINC 85354-9, components 8480-6 and 8462-4 in ``mm[Hg]``, mean
8478-0 when sent) and, when the cuff sent a pulse, a heart-rate Observation (8867-4, ``/min``)
derived from it; a glucose reading is LOINC 14743-9 (capillary blood glucose by meter) in
``mmol/L``. Wearable kinds (SpO2, body temperature, body weight, CGM glucose) take their codes
from `devices.observation_codes` (LOINC 59408-5/2708-6, 8310-5, 29463-7, the CGM IG's
105272-9), one `ObservationView` each. A stream's per-minute summary (heart rate, SpO2) has the
minute's mean as its value and the lowest, the highest and the number of samples as
components coded by FHIR's StatisticsCode (`minimum`, `maximum`, `count`): the vital-signs
profile allows components, and the PHD IG's numeric observation keeps one value per
Observation, so the statistics of the same measurement travel with it rather than as
Observations of their own. A single measurement (a spot-check) has no such components.

Every Observation carries: the reading id as identifier, the device (``Observation.device``)
and the gateway (PHD gateway extension), ``effectiveDateTime`` = the clock-corrected
`measured_at` with the device's own time stamp, Time Offset and the gateway's clock estimate
beside it (device-clock extension), ``issued`` = when the record store committed it. IEEE 11073
special values never become numbers: NaN, NRes and reserved are a ``dataAbsentReason``; a
meter's HI/LO (+INF/-INF) are ``positive-infinity``/``negative-infinity`` with the off-scale
interpretation ``>``/``<``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from api.fhir import codes
from api.fhir.codes import LOINC, MDC, UCUM, Coding, concept
from api.fhir.ids import gateway_device_id, to_fhir_id
from devices import observation_codes as oc
from devices.reading import Kind, Reading, Value
from devices.special import Special


@dataclass(frozen=True, slots=True)
class Measure:
    """One value of a reading as a Quantity: its codes and UCUM unit."""

    value_name: str
    codings: tuple[Coding, ...]
    ucum: str
    unit: str
    integer: bool = False  # a count: ``valueInteger``


@dataclass(frozen=True, slots=True)
class ObservationView:
    """One Observation a reading of `kind` becomes.

    Attributes:
        suffix: appended to the reading id as ``{reading_id}-{suffix}`` ('' for the reading's
            own Observation).
        value: the single value (``valueQuantity``), or None for a panel of `components`.
        requires: the value that must be in the reading for this view to exist.
        derived_from_suffix: the view this one is derived from (pulse from the BP panel).
    """

    kind: Kind
    suffix: str
    codings: tuple[Coding, ...]
    category: Coding
    profiles: tuple[str, ...]
    value: Measure | None
    components: tuple[Measure, ...] = ()
    requires: str | None = None
    derived_from_suffix: str | None = None

    @property
    def primary_coding(self) -> Coding:
        """The LOINC code searches match (``code=http://loinc.org|85354-9``)."""
        return self.codings[0]


def _loinc(code: str, display: str) -> Coding:
    return Coding(LOINC, code, display)


def _mdc(code: str, display: str) -> Coding:
    return Coding(MDC, code, display)


SYSTOLIC: Final = Measure(
    "systolic_mmhg",
    (_loinc("8480-6", "Systolic blood pressure"), _mdc("150021", "MDC_PRESS_BLD_NONINV_SYS")),
    "mm[Hg]",
    "mmHg",
)
DIASTOLIC: Final = Measure(
    "diastolic_mmhg",
    (_loinc("8462-4", "Diastolic blood pressure"), _mdc("150022", "MDC_PRESS_BLD_NONINV_DIA")),
    "mm[Hg]",
    "mmHg",
)
MEAN_ARTERIAL: Final = Measure(
    "mean_arterial_mmhg",
    (_loinc("8478-0", "Mean blood pressure"), _mdc("150023", "MDC_PRESS_BLD_NONINV_MEAN")),
    "mm[Hg]",
    "mmHg",
)
_HEART_RATE_CODES: Final = (_loinc("8867-4", "Heart rate"), _mdc("149546", "MDC_PULS_RATE_NON_INV"))
_GLUCOSE_CODES: Final = (
    _loinc("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer"),
    _mdc("160196", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
)


def _statistic(code: str, display: str) -> Coding:
    return Coding(codes.OBSERVATION_STATISTICS, code, display)


def summary_components(
    lowest: str, highest: str, ucum: str, unit: str, what: str
) -> tuple[Measure, ...]:
    """The components of a per-minute summary: lowest and highest sample, sample count."""
    return (
        Measure(lowest, (_statistic("minimum", f"Minimum {what} in the period"),), ucum, unit),
        Measure(highest, (_statistic("maximum", f"Maximum {what} in the period"),), ucum, unit),
        Measure("sample_count", (_statistic("count", "Number of samples"),), "1", "", True),
    )


CGM_READING_PROFILE: Final = (
    "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-moles-per-volume"
)


def _codings(codes_: tuple[oc.Code, ...]) -> tuple[Coding, ...]:
    return tuple(Coding(c.system, c.code, c.display) for c in codes_)


def _wearable_view(
    kind: Kind,
    value: oc.ValueCoding,
    unit: str,
    category: Coding,
    *,
    suffix: str = "",
    components: tuple[Measure, ...] = (),
) -> ObservationView:
    codings = _codings(value.codes)
    profiles = (value.profile, codes.PHD_NUMERIC) if value.profile else (CGM_READING_PROFILE,)
    return ObservationView(
        kind=kind,
        suffix=suffix,
        codings=codings,
        category=category,
        profiles=profiles,
        value=Measure(value.value, codings, value.ucum, unit),
        components=components,
        requires=value.value if suffix else None,
        derived_from_suffix="" if suffix else None,
    )


_SPO2, _SPO2_PULSE = oc.KIND_CODINGS[Kind.SPO2]
WEARABLE_VIEWS: Final[tuple[ObservationView, ...]] = (
    _wearable_view(
        Kind.SPO2,
        _SPO2,
        "%",
        codes.VITAL_SIGNS,
        components=summary_components("spo2_lowest_pct", "spo2_highest_pct", "%", "%", "SpO2"),
    ),
    _wearable_view(Kind.SPO2, _SPO2_PULSE, "beats/minute", codes.VITAL_SIGNS, suffix="hr"),
    _wearable_view(
        Kind.BODY_TEMPERATURE, oc.KIND_CODINGS[Kind.BODY_TEMPERATURE][0], "C", codes.VITAL_SIGNS
    ),
    _wearable_view(Kind.BODY_WEIGHT, oc.KIND_CODINGS[Kind.BODY_WEIGHT][0], "kg", codes.VITAL_SIGNS),
    _wearable_view(
        Kind.CGM_GLUCOSE, oc.KIND_CODINGS[Kind.CGM_GLUCOSE][0], "mmol/L", codes.LABORATORY
    ),
)

VIEWS: Final[tuple[ObservationView, ...]] = (
    ObservationView(
        kind=Kind.BLOOD_PRESSURE,
        suffix="",
        codings=(
            _loinc("85354-9", "Blood pressure panel with all children optional"),
            _mdc("150020", "MDC_PRESS_BLD_NONINV"),
        ),
        category=codes.VITAL_SIGNS,
        profiles=(codes.BP_PROFILE, codes.PHD_COMPOUND),
        value=None,
        components=(SYSTOLIC, DIASTOLIC, MEAN_ARTERIAL),
    ),
    ObservationView(
        kind=Kind.BLOOD_PRESSURE,
        suffix="hr",
        codings=_HEART_RATE_CODES,
        category=codes.VITAL_SIGNS,
        profiles=(codes.HEART_RATE_PROFILE, codes.PHD_NUMERIC),
        value=Measure("pulse_per_min", _HEART_RATE_CODES, "/min", "beats/minute"),
        requires="pulse_per_min",
        derived_from_suffix="",
    ),
    ObservationView(
        kind=Kind.HEART_RATE,
        suffix="",
        codings=_HEART_RATE_CODES,
        category=codes.VITAL_SIGNS,
        profiles=(codes.HEART_RATE_PROFILE, codes.PHD_NUMERIC),
        value=Measure("heart_rate_per_min", _HEART_RATE_CODES, "/min", "beats/minute"),
        components=summary_components(
            "heart_rate_lowest_per_min",
            "heart_rate_highest_per_min",
            "/min",
            "beats/minute",
            "heart rate",
        ),
    ),
    ObservationView(
        kind=Kind.GLUCOSE,
        suffix="",
        codings=_GLUCOSE_CODES,
        category=codes.LABORATORY,
        profiles=(codes.PHD_NUMERIC,),
        value=Measure("glucose_mmol_l", _GLUCOSE_CODES, "mmol/L", "mmol/L"),
    ),
    *WEARABLE_VIEWS,
)

_SPECIAL_ABSENT: Final[Mapping[Special, tuple[str, str]]] = {
    Special.NAN: ("not-a-number", "Not a Number (NaN)"),
    Special.NRES: ("error", "Not at this resolution (NRes)"),
    Special.RESERVED: ("error", "Reserved value"),
    Special.POSITIVE_INFINITY: ("positive-infinity", "Positive Infinity (+INF, device HI)"),
    Special.NEGATIVE_INFINITY: ("negative-infinity", "Negative Infinity (-INF, device LO)"),
}
_SPECIAL_INTERPRETATION: Final[Mapping[Special, Coding]] = {
    Special.POSITIVE_INFINITY: Coding(codes.INTERPRETATION, ">", "Off scale high"),
    Special.NEGATIVE_INFINITY: Coding(codes.INTERPRETATION, "<", "Off scale low"),
}


def views_for(kind: Kind) -> tuple[ObservationView, ...]:
    """The Observation views of a reading kind (empty for a kind not mapped yet)."""
    return tuple(v for v in VIEWS if v.kind is kind)


def view_by_suffix(kind: Kind, suffix: str) -> ObservationView | None:
    """The view of `kind` with `suffix`, if any."""
    return next((v for v in VIEWS if v.kind is kind and v.suffix == suffix), None)


def observation_id(reading_id: str, view: ObservationView) -> str:
    """The Observation id of `view` of a reading."""
    return reading_id if not view.suffix else f"{reading_id}-{view.suffix}"


def split_observation_id(observation_id: str) -> tuple[str, str] | None:
    """(reading id, suffix) of an Observation id, or None when it is not one of ours."""
    reading_id, suffix = observation_id[:36], observation_id[36:]
    if len(reading_id) != 36 or (suffix and not suffix.startswith("-")):
        return None
    return reading_id, suffix[1:]


def iso(moment: datetime) -> str:
    """An instant in FHIR form (UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _quantity(measure: Measure, value: float) -> dict[str, object]:
    return {"value": value, "unit": measure.unit, "system": UCUM, "code": measure.ucum}


def _value_fields(measure: Measure, value: Value) -> dict[str, object]:
    """``valueQuantity`` for a number (``valueInteger`` for a count); ``dataAbsentReason``
    (+ interpretation) for a special."""
    if measure.integer and not isinstance(value, Special):
        return {"valueInteger": round(value)}
    if isinstance(value, Special):
        code, text = _SPECIAL_ABSENT[value]
        out: dict[str, object] = {
            "dataAbsentReason": concept(
                Coding(codes.DATA_ABSENT_REASON, code, text), text=f"device reported {value.value}"
            )
        }
        interpretation = _SPECIAL_INTERPRETATION.get(value)
        if interpretation is not None:
            out["interpretation"] = [concept(interpretation)]
        return out
    return {"valueQuantity": _quantity(measure, value)}


def _clock_extension(reading: Reading) -> dict[str, object] | None:
    parts: list[dict[str, object]] = []
    if reading.device_time is not None:
        parts.append({"url": "deviceTime", "valueString": reading.device_time})
    if reading.device_time_offset_min is not None:
        parts.append({"url": "timeOffsetMinutes", "valueInteger": reading.device_time_offset_min})
    if reading.clock_offset_s is not None:
        parts.append({"url": "clockOffsetSeconds", "valueDecimal": reading.clock_offset_s})
    if not parts:
        return None
    return {"url": codes.DEVICE_CLOCK_EXTENSION, "extension": parts}


def _context_extension(reading: Reading) -> dict[str, object] | None:
    parts: list[dict[str, object]] = []
    for key, value in reading.context.items():
        if isinstance(value, bool):
            parts.append({"url": key, "valueBoolean": value})
        elif isinstance(value, int):
            parts.append({"url": key, "valueInteger": value})
        elif isinstance(value, float):
            parts.append({"url": key, "valueDecimal": value})
        else:
            parts.append({"url": key, "valueString": value})
    if not parts:
        return None
    return {"url": codes.CONTEXT_EXTENSION, "extension": parts}


def to_observation(
    reading: Reading, view: ObservationView, *, stored_at: datetime
) -> dict[str, object] | None:
    """The Observation JSON of `view` of a stored reading; None when the view does not apply.

    Raises:
        ValueError: the view is for another kind than the reading's.
    """
    if view.kind is not reading.kind:
        raise ValueError(f"view for {view.kind.value} applied to a {reading.kind.value} reading")
    if view.requires is not None and view.requires not in reading.values:
        return None
    obs_id = observation_id(reading.reading_id, view)
    extensions: list[dict[str, object]] = [
        {
            "url": codes.GATEWAY_EXTENSION,
            "valueReference": {"reference": f"Device/{gateway_device_id(reading.gateway_id)}"},
        }
    ]
    for ext in (_clock_extension(reading), _context_extension(reading)):
        if ext is not None:
            extensions.append(ext)
    meta: dict[str, object] = {"profile": list(view.profiles), "lastUpdated": iso(stored_at)}
    if reading.status:
        meta["tag"] = [
            {"system": codes.STATUS_FLAG_SYSTEM, "code": flag} for flag in reading.status
        ]
    obs: dict[str, object] = {
        "resourceType": "Observation",
        "id": obs_id,
        "meta": meta,
        "extension": extensions,
        "identifier": [{"system": codes.UUID_URN, "value": f"urn:uuid:{reading.reading_id}"}],
        "status": "final",
        "category": [concept(view.category)],
        "code": concept(*view.codings, text=view.primary_coding.display),
        "subject": {"reference": f"Patient/{to_fhir_id(reading.patient_id)}"},
        "effectiveDateTime": iso(reading.measured_at),
        "issued": iso(stored_at),
        "device": {"reference": f"Device/{reading.device.id}"},
    }
    if view.value is not None:
        obs.update(_value_fields(view.value, reading.values[view.value.value_name]))
    components = []
    for measure in view.components:
        value = reading.values.get(measure.value_name)
        if value is None:
            continue
        component: dict[str, object] = {"code": concept(*measure.codings)}
        component.update(_value_fields(measure, value))
        components.append(component)
    if components:
        obs["component"] = components
    if view.derived_from_suffix is not None:
        parent = next(v for v in views_for(view.kind) if v.suffix == view.derived_from_suffix)
        obs["derivedFrom"] = [
            {"reference": f"Observation/{observation_id(reading.reading_id, parent)}"}
        ]
    return obs


def observations_of(reading: Reading, *, stored_at: datetime) -> list[dict[str, object]]:
    """Every Observation a stored reading becomes, in `VIEWS` order."""
    out = []
    for view in views_for(reading.kind):
        obs = to_observation(reading, view, stored_at=stored_at)
        if obs is not None:
            out.append(obs)
    return out
