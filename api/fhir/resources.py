"""Devices, alerts and the care-team record as FHIR resources (pure JSON mappings).

- Device: a meter or cuff (id = the reading's device id, from Device Information) or a gateway
  (home hub; id = `ids.gateway_device_id`), with the patient who uses it; a device its hub
  reported (the device registry) has the hub as `parent` and is ``inactive`` once unpaired.
- Flag: an alert episode (status ``active`` while open and not resolved by a clinician), with
  its rule as the code and its priority in the flag-priority extension.
- Patient, Practitioner (a care-team member; id = the member id) and CareTeam (participants
  reference Practitioners; managed by the team's institution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from api.fhir import codes
from api.fhir.codes import Coding, concept
from api.fhir.ids import gateway_device_id, to_fhir_id
from api.fhir.observation import iso

FLAG_PRIORITY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/flag-priority-code"
FLAG_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
_FLAG_PRIORITY: Final[Mapping[str, tuple[str, str]]] = {
    "high": ("PH", "High priority"),
    "medium": ("PM", "Medium priority"),
    "low": ("PL", "Low priority"),
}
_PRACTITIONER_ROLE: Final[Mapping[str, tuple[str, str]]] = {
    # SNOMED CT occupations where one fits; "other"/"coordinator" stay as text.
    "physician": ("309343006", "Physician"),
    "nurse": ("106292003", "Professional nurse"),
    "pharmacist": ("46255001", "Pharmacist"),
}
SNOMED: Final = "http://snomed.info/sct"


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A meter, cuff or wearable as its hub reported it (paired or not, and on which hub) or,
    for one no hub reported, as ingest saw it in readings."""

    device_id: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    patient_id: str | None
    kinds: tuple[str, ...]
    active: bool = True  # False once its hub reported it unpaired
    gateway_id: str | None = None  # the hub that reported it


def device(record: DeviceRecord) -> dict[str, object]:
    """The Device JSON of a meter or cuff (PHD device)."""
    out: dict[str, object] = {
        "resourceType": "Device",
        "id": record.device_id,
        "identifier": [{"system": codes.DEVICE_ID_SYSTEM, "value": record.device_id}],
        "status": "active" if record.active else "inactive",
        "type": {"text": "personal health device: " + (", ".join(record.kinds) or "unknown")},
    }
    if record.manufacturer:
        out["manufacturer"] = record.manufacturer
    if record.model:
        out["modelNumber"] = record.model
    if record.serial:
        out["serialNumber"] = record.serial
    if record.firmware:
        out["version"] = [{"type": {"text": "firmware"}, "value": record.firmware}]
    if record.patient_id:
        out["patient"] = {"reference": f"Patient/{to_fhir_id(record.patient_id)}"}
    if record.gateway_id:
        out["parent"] = {"reference": f"Device/{gateway_device_id(record.gateway_id)}"}
    return out


def gateway_device(gateway_id: str, patient_id: str | None) -> dict[str, object]:
    """The Device JSON of a gateway (the PHD IG's personal health gateway)."""
    out: dict[str, object] = {
        "resourceType": "Device",
        "id": gateway_device_id(gateway_id),
        "identifier": [{"system": codes.GATEWAY_ID_SYSTEM, "value": gateway_id}],
        "status": "active",
        "type": {"text": "personal health gateway (home hub)"},
    }
    if patient_id:
        out["patient"] = {"reference": f"Patient/{to_fhir_id(patient_id)}"}
    return out


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert episode as the engine keeps it, with its clinical handling."""

    alert_id: str
    patient_id: str
    rule_id: str
    rule_version: int
    priority: str
    status: str  # the engine's: open / resolved
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None  # resolved by a clinician
    closed_by: str | None = None

    @property
    def active(self) -> bool:
        """True while the engine holds it open and no clinician resolved it."""
        return self.status == "open" and self.closed_at is None


def flag(alert: AlertRecord) -> dict[str, object]:
    """The Flag JSON of an alert."""
    code, display = _FLAG_PRIORITY.get(alert.priority, ("PN", "No alarm"))
    end = alert.closed_at or alert.resolved_at
    period: dict[str, object] = {"start": iso(alert.opened_at)}
    if end is not None and not alert.active:
        period["end"] = iso(end)
    out: dict[str, object] = {
        "resourceType": "Flag",
        "id": alert.alert_id,
        "meta": {"lastUpdated": iso(alert.updated_at)},
        "extension": [
            {
                "url": FLAG_PRIORITY_EXTENSION,
                "valueCodeableConcept": concept(Coding(FLAG_PRIORITY_SYSTEM, code, display)),
            }
        ],
        "identifier": [{"system": codes.ALERT_ID_SYSTEM, "value": alert.alert_id}],
        "status": "active" if alert.active else "inactive",
        "category": [concept(Coding(FLAG_CATEGORY_SYSTEM, "clinical", "Clinical"))],
        "code": concept(
            Coding(codes.RULE_SYSTEM, alert.rule_id, alert.rule_id),
            text=f"{alert.rule_id} (rule version {alert.rule_version})",
        ),
        "subject": {"reference": f"Patient/{to_fhir_id(alert.patient_id)}"},
        "period": period,
    }
    return out


def patient(patient_id: str, *, active: bool = True, name: str | None = None) -> dict[str, object]:
    """The Patient JSON of a record patient."""
    out: dict[str, object] = {
        "resourceType": "Patient",
        "id": to_fhir_id(patient_id),
        "identifier": [{"system": codes.PATIENT_ID_SYSTEM, "value": patient_id}],
        "active": active,
    }
    if name:
        out["name"] = [{"text": name}]
    return out


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A care-team member."""

    member_id: str
    team_id: str
    display_name: str
    role: str
    active: bool


def practitioner(member: MemberRecord) -> dict[str, object]:
    """The Practitioner JSON of a member (id = the member id)."""
    return {
        "resourceType": "Practitioner",
        "id": to_fhir_id(member.member_id),
        "identifier": [{"system": codes.MEMBER_ID_SYSTEM, "value": member.member_id}],
        "active": member.active,
        "name": [{"text": member.display_name}],
    }


def _role(role: str) -> dict[str, object]:
    found = _PRACTITIONER_ROLE.get(role)
    if found is None:
        return {"text": role}
    return concept(Coding(SNOMED, found[0], found[1]), text=role)


def care_team(
    team_id: str,
    name: str,
    institution_id: str,
    institution_name: str,
    members: Sequence[MemberRecord],
) -> dict[str, object]:
    """The CareTeam JSON of a team; participants reference Practitioner/{member id}."""
    out: dict[str, object] = {
        "resourceType": "CareTeam",
        "id": to_fhir_id(team_id),
        "identifier": [{"system": codes.TEAM_ID_SYSTEM, "value": team_id}],
        "status": "active",
        "name": name,
        "managingOrganization": [
            {
                "identifier": {"system": f"{codes.HV}/sid/institution-id", "value": institution_id},
                "display": institution_name,
            }
        ],
    }
    participants = [
        {
            "role": [_role(m.role)],
            "member": {"reference": f"Practitioner/{to_fhir_id(m.member_id)}"},
        }
        for m in members
        if m.active
    ]
    if participants:
        out["participant"] = participants
    return out
