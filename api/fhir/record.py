"""Consent grants and audit entries of the care-team record as FHIR resources (pure).

- Consent (R4): scope ``patient-privacy``, category LOINC 59284-0, a ``permit`` provision whose
  actor is the grantee (``CareTeam/{team}`` or the institution as an identifier), whose
  ``class`` lists the granted data kinds and whose period is the grant's; status ``active``
  until withdrawn (``inactive``).
- AuditEvent: `careteam.audit.to_fhir` (IHE Basic Audit Log Patterns shape), with the agent
  and the patient given as references the API serves (``Practitioner/{member}``,
  ``Patient/{patient}``) so a patient can see who looked.
"""

from __future__ import annotations

from typing import Final

from api.fhir import codes
from api.fhir.codes import Coding, concept
from api.fhir.ids import to_fhir_id
from api.fhir.observation import iso
from careteam.audit import AuditEntry, to_fhir
from careteam.consent import Grant

CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DATA_KIND_SYSTEM: Final = f"{codes.HV}/CodeSystem/data-kind"
CONSENT_METHOD_SYSTEM: Final = f"{codes.HV}/CodeSystem/consent-method"
_REFERENCE_OF_ACTOR: Final = {"member": "Practitioner", "patient": "Patient"}


def consent(grant: Grant) -> dict[str, object]:
    """The Consent JSON of a grant."""
    if grant.grantee_kind == "team":
        grantee: dict[str, object] = {"reference": f"CareTeam/{to_fhir_id(grant.grantee_id)}"}
    else:
        grantee = {
            "identifier": {"system": f"{codes.HV}/sid/institution-id", "value": grant.grantee_id}
        }
    period: dict[str, object] = {"start": iso(grant.period_start)}
    if grant.period_end is not None:
        period["end"] = iso(grant.period_end)
    return {
        "resourceType": "Consent",
        "id": to_fhir_id(grant.consent_id),
        "status": "active" if grant.status == "active" else "inactive",
        "scope": concept(Coding(CONSENT_SCOPE, "patient-privacy", "Privacy Consent")),
        "category": [concept(Coding(codes.LOINC, "59284-0", "Patient Consent"))],
        "patient": {"reference": f"Patient/{to_fhir_id(grant.patient_id)}"},
        "dateTime": iso(grant.recorded_at),
        "performer": [{"reference": f"Patient/{to_fhir_id(grant.patient_id)}"}],
        "policyRule": concept(Coding(ACT_CODE, "OPTIN", "opt-in")),
        "verification": [
            {
                "verified": True,
                "verifiedWith": {
                    "identifier": {"system": codes.MEMBER_ID_SYSTEM, "value": grant.recorded_by}
                },
                "verificationDate": iso(grant.recorded_at),
            }
        ],
        "extension": [
            {
                "url": f"{codes.HV}/StructureDefinition/consent-method",
                "valueCoding": Coding(CONSENT_METHOD_SYSTEM, grant.method, grant.method).json(),
            }
        ],
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [
                {
                    "role": concept(Coding(PARTICIPATION, "IRCP", "information recipient")),
                    "reference": grantee,
                }
            ],
            "class": [
                {"system": DATA_KIND_SYSTEM, "code": kind, "display": kind}
                for kind in grant.data_kinds
            ],
        },
    }


def audit_event(entry: AuditEntry) -> dict[str, object]:
    """The AuditEvent JSON of an audit entry, with served references for agent and patient."""
    event = to_fhir(entry)
    agents = event.get("agent")
    if isinstance(agents, list):
        for agent in agents:
            who = agent.get("who") if isinstance(agent, dict) else None
            kind = _REFERENCE_OF_ACTOR.get(entry.actor_kind)
            if isinstance(who, dict) and kind is not None:
                who["reference"] = f"{kind}/{to_fhir_id(entry.actor_id)}"
    entities = event.get("entity")
    if isinstance(entities, list) and entry.patient_id is not None:
        for entity in entities:
            what = entity.get("what") if isinstance(entity, dict) else None
            if isinstance(what, dict) and str(what.get("reference", "")).startswith("Patient/"):
                what["reference"] = f"Patient/{to_fhir_id(entry.patient_id)}"
    return event
