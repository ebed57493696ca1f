"""FHIR R4 routes over patient data: Observation, Device, Flag, Patient (searchset Bundles with
``next`` links, and reads).

Each route declares `authenticate`; patient data goes through `api.access.run_gated` (scope,
compartment, consent, audit). Query parameters are parsed by `api.fhir.search` (strict: 400
with an OperationOutcome naming the parameter); they are declared here too, as plain strings,
so the OpenAPI document lists them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api import readings
from api.access import Gate, data_kind_of_reading
from api.errors import ForbiddenError, InvalidRequestError, NotFoundError
from api.fhir import resources
from api.fhir.bundle import FHIR_JSON
from api.fhir.observation import (
    VIEWS,
    ObservationView,
    split_observation_id,
    to_observation,
    view_by_suffix,
)
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
from api.record_queries import alert_by_id, search_alerts
from api.scopes import Action
from api.tokens import Actor
from careteam import record
from careteam.errors import NotFoundError as RecordNotFoundError
from careteam.kinds import DATA_KINDS

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=FHIR_RESPONSES)
_MAX_PATIENTS = 1000

# --- Observation -----------------------------------------------------------------------------


def _views_for_codes(search: Search) -> list[ObservationView]:
    if not search.codes:
        return list(VIEWS)
    return [
        v
        for v in VIEWS
        if any(
            c.code == code and (system is None or c.system == system)
            for system, code in search.codes
            for c in v.codings
        )
    ]


def _patient_scope(
    gate: Gate, search: Search, kinds: set[str], *, explicit: bool
) -> dict[str, set[str]]:
    """Per patient the data kinds the caller may see in this search (audited when named)."""
    if search.patient is not None:
        allowed: set[str] = set()
        denied: list[str] = []
        for kind in sorted(kinds):
            decision = gate.decide(search.patient, kind)
            if decision.permit:
                allowed.add(kind)
            elif decision.reason != "unknown_kind" or len(kinds) == 1:
                denied.append(kind)  # (a kind no grant can name yet is left out quietly)
        if denied and (explicit or not allowed):
            gate.permit(search.patient, denied[0], detail={"search": gate.resource_type})
        for kind in sorted(allowed):
            gate.record(search.patient, data_kind=kind, decision=gate.decide(search.patient, kind))
        return {search.patient: allowed}
    if gate.caller.principal.actor is Actor.SYSTEM:
        raise ForbiddenError("backend (system) tokens read no patient data")
    scope = gate.patients_for(kinds)
    if len(scope) > _MAX_PATIENTS:
        raise InvalidRequestError("patient", f"name a patient: more than {_MAX_PATIENTS} match")
    return scope


def _audit_results(gate: Gate, search: Search, seen: dict[str, set[str]]) -> None:
    """Searches without ``patient``: one audit entry per patient whose data was returned."""
    if search.patient is not None:
        return
    for patient_id in sorted(seen):
        for kind in sorted(seen[patient_id]) or [None]:  # type: ignore[list-item]
            gate.record(patient_id, data_kind=kind, decision=gate.decide(patient_id, kind))


@router.get("/Observation", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_observation(
    request: Request,
    principal: Auth,
    patient: Q = None,
    code: Q = None,
    date: Annotated[list[str] | None, Query()] = None,
    _count: Q = None,
    _cursor: Q = None,
) -> Response:
    """Search readings as Observations (vital-signs and PHD profiles), newest first."""
    search = parse(request, "Observation")
    views = _views_for_codes(search)

    def body(gate: Gate) -> Page:
        kinds_by_data: dict[str, set[str]] = {}
        for v in views:
            kinds_by_data.setdefault(data_kind_of_reading(v.kind.value), set()).add(v.kind.value)
        gate.refuse_scope(Action.SEARCH, search.patient, None)
        scope = _patient_scope(gate, search, set(kinds_by_data), explicit=bool(search.codes))
        reading_scope = {
            p: frozenset(k for d in data for k in kinds_by_data.get(d, ()))
            for p, data in scope.items()
        }
        cursor = cursor_of(search, (str, int, int), time_first=True)
        page = readings.search_observations(
            gate.conn,
            scope=reading_scope,
            views=views,
            date_from=search.date_from,
            date_to=search.date_to,
            count=search.count,
            cursor=cursor,  # type: ignore[arg-type]
        )
        _audit_results(gate, search, {p: set(scope.get(p, ())) for p in page.patient_ids})
        return Page(page.observations, page.next_cursor)

    return search_response(
        request, "Observation", gated(request, principal, "Observation", "search", body)
    )


@router.get(
    "/Observation/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}}
)
def read_observation(request: Request, principal: Auth, id: str) -> Response:
    """Read one Observation (``{reading id}`` or ``{reading id}-hr``)."""
    parts = split_observation_id(id)

    def body(gate: Gate) -> dict[str, object]:
        if parts is None:
            raise NotFoundError("no Observation has that id")
        stored = readings.reading_by_id(gate.conn, parts[0])
        view = view_by_suffix(stored.reading.kind, parts[1]) if stored is not None else None
        if stored is None or view is None:
            raise NotFoundError("no Observation has that id")
        obs = to_observation(stored.reading, view, stored_at=stored.stored_at)
        if obs is None:
            raise NotFoundError("no Observation has that id")
        kind = data_kind_of_reading(stored.reading.kind.value)
        gate.refuse_scope(Action.READ, stored.reading.patient_id, kind)
        gate.permit(stored.reading.patient_id, kind, entity_id=id)
        return obs

    return fhir_response(gated(request, principal, "Observation", "read", body))


# --- Device ----------------------------------------------------------------------------------


def _devices_of(gate: Gate, patient_id: str) -> list[dict[str, object]]:
    out = [resources.device(d) for d in readings.devices_of(gate.conn, patient_id)]
    out += [
        resources.gateway_device(g, patient_id) for g in readings.gateways_of(gate.conn, patient_id)
    ]
    return out


@router.get("/Device", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_device(
    request: Request, principal: Auth, patient: Q = None, _count: Q = None, _cursor: Q = None
) -> Response:
    """Search the meters, cuffs and gateways (home hubs) of patients."""
    search = parse(request, "Device")

    def body(gate: Gate) -> Page:
        gate.refuse_scope(Action.SEARCH, search.patient, "devices")
        scope = _patient_scope(gate, search, {"devices"}, explicit=True)
        items: list[dict[str, object]] = []
        for patient_id in sorted(scope):
            found = _devices_of(gate, patient_id)
            if found and search.patient is None:
                gate.record(
                    patient_id, data_kind="devices", decision=gate.decide(patient_id, "devices")
                )
            items += found
        return offset_page(items, search)

    return search_response(request, "Device", gated(request, principal, "Device", "search", body))


@router.get("/Device/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_device(request: Request, principal: Auth, id: str) -> Response:
    """Read one meter, cuff or gateway."""

    def body(gate: Gate) -> dict[str, object]:
        gateway_id = None
        patients = readings.device_patients(gate.conn, id)
        if not patients:
            gateway_id = readings.gateway_by_device_id(
                gate.conn, id, readings.all_gateways(gate.conn)
            )
            if gateway_id is not None:
                patients = readings.device_patients(gate.conn, gateway_id)
        if not patients:
            raise NotFoundError("no Device has that id")
        # A household's meter or hub serves several patients: any one the caller may see.
        owner = next((p for p in patients if gate.decide(p, "devices").permit), patients[0])
        gate.refuse_scope(Action.READ, owner, "devices")
        gate.permit(owner, "devices", entity_id=id)
        if gateway_id is not None:
            return resources.gateway_device(gateway_id, owner)
        found = [d for d in readings.devices_of(gate.conn, owner) if d.device_id == id]
        return resources.device(found[0])

    return fhir_response(gated(request, principal, "Device", "read", body))


# --- Flag ------------------------------------------------------------------------------------


@router.get("/Flag", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_flag(
    request: Request,
    principal: Auth,
    patient: Q = None,
    status: Q = None,
    _count: Q = None,
    _cursor: Q = None,
) -> Response:
    """Search alerts as Flags, newest first (``status=active`` for the open ones)."""
    search = parse(request, "Flag")

    def body(gate: Gate) -> Page:
        gate.refuse_scope(Action.SEARCH, search.patient, "alerts")
        scope = _patient_scope(gate, search, {"alerts"}, explicit=True)
        cursor = cursor_of(search, (str, str), time_first=True)
        page = search_alerts(
            gate.conn,
            patient_ids=frozenset(scope),
            active=None if search.status is None else search.status == "active",
            count=search.count,
            cursor=cursor,  # type: ignore[arg-type]
        )
        _audit_results(gate, search, {a.patient_id: {"alerts"} for a in page.alerts})
        return Page([resources.flag(a) for a in page.alerts], page.next_cursor)

    return search_response(request, "Flag", gated(request, principal, "Flag", "search", body))


@router.get("/Flag/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_flag(request: Request, principal: Auth, id: str) -> Response:
    """Read one alert as a Flag."""

    def body(gate: Gate) -> dict[str, object]:
        alert = alert_by_id(gate.conn, id)
        if alert is None:
            raise NotFoundError("no Flag has that id")
        gate.refuse_scope(Action.READ, alert.patient_id, "alerts")
        gate.permit(alert.patient_id, "alerts", entity_id=id)
        return resources.flag(alert)

    return fhir_response(gated(request, principal, "Flag", "read", body))


# --- Patient ---------------------------------------------------------------------------------


def _patient_resource(gate: Gate, patient_id: str) -> dict[str, object] | None:
    try:
        profile = record.get_patient(gate.conn, patient_id)
    except RecordNotFoundError:
        return None
    return resources.patient(patient_id, active=profile.active, name=profile.display_name)


@router.get("/Patient", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def search_patient(
    request: Request, principal: Auth, _id: Q = None, _count: Q = None, _cursor: Q = None
) -> Response:
    """The patients the caller may see (a patient: themselves; a member: their team's grants)."""
    search = parse(request, "Patient")

    def body(gate: Gate) -> Page:
        gate.require_scope(Action.SEARCH)
        if gate.caller.principal.actor is Actor.SYSTEM:
            raise ForbiddenError("backend (system) tokens read no patient data")
        scope = gate.patients_for(DATA_KINDS)
        ids = sorted(p for p in scope if not search.ids or p in search.ids)
        items = []
        for patient_id in ids:
            resource = _patient_resource(gate, patient_id)
            if resource is not None:
                items.append(resource)
        page = offset_page(items, search)
        for resource in page.resources:
            pid = record_id(str(resource["id"]))
            gate.record(pid, data_kind=None, decision=gate.decide(pid, None))
        return page

    return search_response(request, "Patient", gated(request, principal, "Patient", "search", body))


@router.get("/Patient/{id}", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def read_patient(request: Request, principal: Auth, id: str) -> Response:
    """Read one patient."""

    def body(gate: Gate) -> dict[str, object]:
        patient_id = record_id(id)
        gate.refuse_scope(Action.READ, patient_id, None)
        resource = _patient_resource(gate, patient_id)
        if resource is None:
            raise NotFoundError("no Patient has that id")
        gate.permit(patient_id, None, entity_id=patient_id)
        return resource

    return fhir_response(gated(request, principal, "Patient", "read", body))
