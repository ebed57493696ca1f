"""FHIR R4 routes over the care-team record: Practitioner and CareTeam (the directory, no
patient data), Consent and AuditEvent (a patient's own, or what names the member's team).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.access import Gate
from api.errors import ForbiddenError, NotFoundError
from api.fhir import record as record_fhir
from api.fhir import resources
from api.fhir.bundle import FHIR_JSON
from api.fhir.ids import to_fhir_id
from api.fhir.search import Search
from api.fhir_routing import (
    Auth,
    Page,
    Q,
    cursor_of,
    gated,
    offset_page,
    parse,
    record_id,
    search_response,
)
from api.http import FHIR_RESPONSES, fhir_response
from api.record_queries import audit_entries, members, teams
from api.scopes import Action
from api.tokens import Actor
from careteam import consent_store
from careteam.consent import Decision, Grant
from careteam.errors import NotFoundError as RecordNotFoundError

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=FHIR_RESPONSES)

# --- Practitioner and CareTeam (the directory: no patient data) ------------------------------


@router.get("/Practitioner", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_practitioner(
    request: Request, principal: Auth, _id: Q = None, _count: Q = None, _cursor: Q = None
) -> Response:
    """Care-team members as Practitioners (ids are the member ids)."""
    search = parse(request, "Practitioner")

    def body(gate: Gate) -> Page:
        gate.require_scope(Action.SEARCH)
        found = members(gate.conn, ids=search.ids)
        return offset_page([resources.practitioner(m) for m in found], search)

    return search_response(
        request, "Practitioner", gated(request, principal, "Practitioner", "search", body)
    )


@router.get(
    "/Practitioner/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}}
)
def read_practitioner(request: Request, principal: Auth, id: str) -> Response:
    """Read one care-team member as a Practitioner."""

    def body(gate: Gate) -> dict[str, object]:
        gate.require_scope(Action.READ)
        found = members(gate.conn, ids=(record_id(id),))
        if not found:
            raise NotFoundError("no Practitioner has that id")
        return resources.practitioner(found[0])

    return fhir_response(gated(request, principal, "Practitioner", "read", body))


def _care_team(gate: Gate, team_ids: tuple[str, ...]) -> list[dict[str, object]]:
    return [
        resources.care_team(
            t.team_id,
            t.name,
            t.institution_id,
            t.institution_name,
            members(gate.conn, team_id=t.team_id),
        )
        for t in teams(gate.conn, ids=team_ids)
    ]


@router.get("/CareTeam", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_care_team(
    request: Request, principal: Auth, _id: Q = None, _count: Q = None, _cursor: Q = None
) -> Response:
    """Care teams with their members (participants reference Practitioner/{member id})."""
    search = parse(request, "CareTeam")

    def body(gate: Gate) -> Page:
        gate.require_scope(Action.SEARCH)
        return offset_page(_care_team(gate, search.ids), search)

    return search_response(
        request, "CareTeam", gated(request, principal, "CareTeam", "search", body)
    )


@router.get(
    "/CareTeam/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}}
)
def read_care_team(request: Request, principal: Auth, id: str) -> Response:
    """Read one care team."""

    def body(gate: Gate) -> dict[str, object]:
        gate.require_scope(Action.READ)
        found = _care_team(gate, (record_id(id),))
        if not found:
            raise NotFoundError("no CareTeam has that id")
        return found[0]

    return fhir_response(gated(request, principal, "CareTeam", "read", body))


# --- Consent ---------------------------------------------------------------------------------


def _visible_grants(gate: Gate, patient_id: str | None) -> list[Grant]:
    caller = gate.caller
    if caller.patient_id is not None:
        if patient_id not in (None, caller.patient_id):
            gate.permit(str(patient_id), None)  # audited denial, raises
        return consent_store.grants_for_patient(gate.conn, caller.patient_id)
    if caller.accessor is None:
        raise ForbiddenError("backend (system) tokens read no patient data")
    grants = consent_store.grants_for_team(gate.conn, caller.accessor.team_id)
    return [g for g in grants if patient_id is None or g.patient_id == patient_id]


@router.get("/Consent", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_consent(
    request: Request, principal: Auth, patient: Q = None, _count: Q = None, _cursor: Q = None
) -> Response:
    """Consent grants: a patient's own, or those naming the member's team or institution."""
    search = parse(request, "Consent")

    def body(gate: Gate) -> Page:
        gate.refuse_scope(Action.SEARCH, search.patient, None)
        grants = _visible_grants(gate, search.patient)
        page = offset_page([record_fhir.consent(g) for g in grants], search)
        by_id = {to_fhir_id(g.consent_id): g for g in grants}
        for pid in sorted({by_id[str(r["id"])].patient_id for r in page.resources}):
            gate.record(pid, data_kind=None, decision=_seen(), detail={"search": "Consent"})
        return page

    return search_response(request, "Consent", gated(request, principal, "Consent", "search", body))


def _seen() -> Decision:
    return Decision(True, "own_or_named_grant")


@router.get("/Consent/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_consent(request: Request, principal: Auth, id: str) -> Response:
    """Read one consent grant."""

    def body(gate: Gate) -> dict[str, object]:
        consent_id = record_id(id)
        try:
            grant = consent_store.get_grant(gate.conn, consent_id)
        except RecordNotFoundError:
            raise NotFoundError("no Consent has that id") from None
        gate.refuse_scope(Action.READ, grant.patient_id, None)
        visible = {g.consent_id for g in _visible_grants(gate, grant.patient_id)}
        if consent_id not in visible:
            gate.record(
                grant.patient_id,
                data_kind=None,
                decision=Decision(False, "not_named"),
                entity_id=consent_id,
            )
            raise ForbiddenError("the grant neither is yours nor names your team")
        gate.record(grant.patient_id, data_kind=None, decision=_seen(), entity_id=consent_id)
        return record_fhir.consent(grant)

    return fhir_response(gated(request, principal, "Consent", "read", body))


# --- AuditEvent ------------------------------------------------------------------------------


def _audit_filter(gate: Gate, search: Search) -> tuple[str | None, tuple[str, str] | None]:
    """(patient, actor) the caller may read: a patient their own, a member their own actions."""
    caller = gate.caller
    agent = None
    if search.agent is not None:
        kind, agent_id = search.agent
        agent = (
            {"Practitioner": "member", "Patient": "patient"}.get(kind or "", "member"),
            agent_id,
        )
    if caller.patient_id is not None:
        if search.patient not in (None, caller.patient_id):
            gate.permit(str(search.patient), None, action="audit.view")
        return caller.patient_id, agent
    if caller.principal.actor is Actor.SYSTEM:
        if search.patient is not None:
            gate.permit(search.patient, None, action="audit.view")  # audited denial, raises
        raise ForbiddenError("backend (system) tokens read no audit trail")
    own = ("member", caller.principal.subject)
    if agent is not None and agent != own:
        raise ForbiddenError("a member reads the audit entries of their own actions")
    return search.patient, own


@router.get("/AuditEvent", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_audit_event(
    request: Request,
    principal: Auth,
    patient: Q = None,
    agent: Q = None,
    _count: Q = None,
    _cursor: Q = None,
) -> Response:
    """The audit trail: a patient's "who saw what, when", or a member's own accesses."""
    search = parse(request, "AuditEvent")

    def body(gate: Gate) -> Page:
        gate.refuse_scope(Action.SEARCH, search.patient, None)
        patient_id, actor = _audit_filter(gate, search)
        cursor = cursor_of(search, (int,))
        found = audit_entries(
            gate.conn,
            patient_id=patient_id,
            actor=actor,
            before_seq=int(cursor[0]) if cursor else None,  # type: ignore[call-overload]
            count=search.count + 1,
        )
        more = len(found) > search.count
        found = found[: search.count]
        gate.record(patient_id, data_kind=None, decision=_seen(), action="audit.view")
        return Page([record_fhir.audit_event(e) for e in found], [found[-1].seq] if more else None)

    return search_response(
        request, "AuditEvent", gated(request, principal, "AuditEvent", "search", body)
    )


@router.get(
    "/AuditEvent/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}}
)
def read_audit_event(request: Request, principal: Auth, id: str) -> Response:
    """Read one audit entry (id = its position in the chain)."""

    def body(gate: Gate) -> dict[str, object]:
        if not id.isdigit() or len(id) > 18:
            raise NotFoundError("no AuditEvent has that id")
        gate.require_scope(Action.READ)
        patient_id, actor = _audit_filter(gate, Search("AuditEvent", 1))
        found = audit_entries(
            gate.conn, patient_id=patient_id, actor=actor, seq=int(id), before_seq=None, count=1
        )
        if not found:
            raise NotFoundError("no AuditEvent has that id")
        gate.record(patient_id, data_kind=None, decision=_seen(), action="audit.view", entity_id=id)
        return record_fhir.audit_event(found[0])

    return fhir_response(gated(request, principal, "AuditEvent", "read", body))
