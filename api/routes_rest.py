"""REST routes for what FHIR does not cover well (JSON, published in ``/openapi.json``).

- ``GET /v1/alerts/{alert_id}``: an alert with its evidence and history; every webhook's
  ``links.alert`` (``{HV_DELIVERY_API_BASE_URL}/alerts/{id}``) resolves here for a member of the
  receiving team (``user/Flag.read`` and the patient's grant of ``alerts``).
- ``POST /v1/alerts/{alert_id}/acknowledge`` and ``/resolve`` with a note (``user/Flag.write``):
  the member's own token replaces the callback link as the credential.
- ``GET /v1/teams/{team_id}/webhooks`` and ``/v1/webhooks/{endpoint_id}/attempts``: the team's
  endpoints and delivery attempts, for the team's coordinators (``user/Endpoint.read``).
- ``POST /v1/patients/{patient_id}/consents``, ``POST /v1/consents/{consent_id}/withdraw``:
  consent grant and withdrawal (``user/Consent.write`` or the patient's ``patient/Consent.write``).
- ``POST /v1/patients/{patient_id}/enrolment-codes``: a code for the patient's hub
  (``user/Device.write``, the team needs the patient's grant of ``devices``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request

from alerts.delivery import ack_token, handling
from alerts.delivery.errors import AcknowledgementRefusedError, AckTokenError
from alerts.delivery.errors import InvalidFieldError as DeliveryInvalidFieldError
from alerts.delivery.errors import NotFoundError as DeliveryNotFoundError
from alerts.delivery.handling import ACKNOWLEDGE
from alerts.delivery.status import endpoint_health
from alerts.delivery.tables import RESOLVE, webhook_attempts
from api.access import Gate
from api.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from api.fhir.ids import to_fhir_id
from api.fhir_routing import gated
from api.http import authenticate, services
from api.record_queries import alert_by_id, alert_evidence, alert_history_of, members
from api.rest_models import (
    AlertDetail,
    AlertLinks,
    AttemptView,
    EndpointView,
    EnrolmentBody,
    EnrolmentCode,
    GrantBody,
    GrantView,
    Handling,
    HandlingResult,
    NoteBody,
    Reference,
    ResolveBody,
    Revision,
    WithdrawBody,
)
from api.scopes import Action
from api.tokens import Actor, Principal
from careteam import consent_store, enrolment_store
from careteam.consent import Grant, GrantRequest
from careteam.errors import InvalidFieldError as RecordInvalidFieldError
from careteam.errors import NotFoundError as RecordNotFoundError

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no bearer token, or one that does not verify"},
    403: {"description": "scope, role or consent refuses it (the reason is said)"},
    404: {"description": "no such record"},
    409: {"description": "the record's state refuses it"},
    422: {"description": "a malformed body or parameter"},
    429: {"description": "rate limit of the token; see Retry-After"},
}
router = APIRouter(prefix="/v1", tags=["rest"], responses=_ERRORS)
Auth = Annotated[Principal, Depends(authenticate)]


def _member_only(gate: Gate) -> str:
    if gate.caller.principal.actor is not Actor.MEMBER or gate.caller.accessor is None:
        raise ForbiddenError("only a care-team member's token may do this")
    return gate.caller.principal.subject


# --- alerts ----------------------------------------------------------------------------------


def _alert_detail(request: Request, gate: Gate, alert_id: str) -> AlertDetail:
    alert = alert_by_id(gate.conn, alert_id)
    if alert is None:
        raise NotFoundError("no alert has that id")
    gate.refuse_scope(Action.READ, alert.patient_id, "alerts")
    gate.permit(alert.patient_id, "alerts", entity_id=alert_id)
    base = str(request.base_url).rstrip("/") + "/fhir"
    evidence = dict(alert_evidence(gate.conn, alert_id))
    listed = evidence.get("reading_ids")
    reading_ids = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
    actions = handling.actions_of(gate.conn, alert_id)
    acks = [a for a in actions if a.action == ACKNOWLEDGE]
    resolutions = [a for a in actions if a.action == RESOLVE]
    acknowledged = None
    if alert.acknowledged_at is not None and alert.acknowledged_by is not None:
        note = next((a.note for a in acks if a.member_id == alert.acknowledged_by), None)
        acknowledged = Handling(
            member_id=alert.acknowledged_by, at=alert.acknowledged_at, note=note
        )
    first_resolution = resolutions[0] if resolutions else None
    return AlertDetail(
        alert_id=alert.alert_id,
        patient=Reference(reference=f"Patient/{to_fhir_id(alert.patient_id)}"),
        rule_id=alert.rule_id,
        rule_version=alert.rule_version,
        priority=alert.priority,  # type: ignore[arg-type]
        status=alert.status,  # type: ignore[arg-type]
        active=alert.active,
        opened_at=alert.opened_at,
        updated_at=alert.updated_at,
        resolved_at=alert.resolved_at,
        evidence=evidence,
        history=[Revision.model_validate(h) for h in alert_history_of(gate.conn, alert_id)],
        acknowledged=acknowledged,
        resolved_by_clinician=(
            Handling(
                member_id=first_resolution.member_id,
                at=first_resolution.at,
                note=first_resolution.note,
            )
            if first_resolution is not None
            else None
        ),
        notes=[Handling(member_id=a.member_id, at=a.at, note=a.note) for a in actions if a.note],
        links=AlertLinks(
            flag=f"{base}/Flag/{alert.alert_id}",
            patient=f"{base}/Patient/{to_fhir_id(alert.patient_id)}",
            readings=[f"{base}/Observation/{r}" for r in reading_ids],
        ),
    )


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(request: Request, principal: Auth, alert_id: str) -> AlertDetail:
    """An alert with its evidence (reading ids, statistics, thresholds, rule version and source)
    and every revision; links to the FHIR Flag, Patient and evidence Observations."""
    return gated(
        request, principal, "Flag", "read", lambda gate: _alert_detail(request, gate, alert_id)
    )


def handle_alert(
    request: Request,
    principal: Principal,
    alert_id: str,
    action: str,
    note: str | None,
    *,
    team_id: str | None = None,
    link_member_id: str | None = None,
) -> HandlingResult:
    """Acknowledge or resolve an alert as the token's member, audited, in one transaction
    (the REST routes, acknowledgement links and the dashboard all come through here)."""

    def body(gate: Gate) -> HandlingResult:
        alert = alert_by_id(gate.conn, alert_id)
        if alert is None:
            raise NotFoundError("no alert has that id")
        gate.refuse_scope(Action.UPDATE, alert.patient_id, "alerts")
        member_id = _member_only(gate)
        accessor = gate.caller.accessor
        if team_id is not None and (accessor is None or accessor.team_id != team_id):
            raise ForbiddenError("the acknowledgement link was sent to another team")
        if link_member_id is not None and link_member_id != member_id:
            raise ForbiddenError("the acknowledgement link is another member's")
        audit_action = "alert.resolve" if action == RESOLVE else "alert.acknowledge"
        gate.permit(alert.patient_id, "alerts", entity_id=alert_id, action=audit_action)
        try:
            if action == RESOLVE:
                assert note is not None
                first = handling.resolve(
                    gate.conn, alert_id, member_id, gate.at, note=note, source=gate.caller.source
                )
            else:
                first = handling.acknowledge(
                    gate.conn, alert_id, member_id, gate.at, note=note, source=gate.caller.source
                )
        except DeliveryNotFoundError:
            raise ConflictError("this alert is not tracked for acknowledgement") from None
        except AcknowledgementRefusedError as exc:
            raise ForbiddenError(exc.reason) from None
        except DeliveryInvalidFieldError as exc:
            raise InvalidRequestError(exc.field, exc.reason) from None
        return HandlingResult(alert_id=alert_id, action=action, first=first)  # type: ignore[arg-type]

    return gated(request, principal, "Flag", "update", body)


@router.post("/alerts/{alert_id}/acknowledge", response_model=HandlingResult)
def acknowledge_alert(
    request: Request, principal: Auth, alert_id: str, body: NoteBody
) -> HandlingResult:
    """Acknowledge an alert as the token's member (stops its escalation), with a note."""
    return handle_alert(request, principal, alert_id, ACKNOWLEDGE, body.note)


@router.post("/alerts/{alert_id}/resolve", response_model=HandlingResult)
def resolve_alert(
    request: Request, principal: Auth, alert_id: str, body: ResolveBody
) -> HandlingResult:
    """Close an alert as handled, saying why (acknowledges it first when nobody had)."""
    return handle_alert(request, principal, alert_id, RESOLVE, body.note)


@router.post("/ack/{token}", response_model=HandlingResult)
def acknowledge_link(
    request: Request, principal: Auth, token: str, body: NoteBody
) -> HandlingResult:
    """A member's link from ``links.acknowledge_members`` of a high-priority webhook, taken
    with that member's own token: the link names the alert, the team it was sent to and the
    member, who must be the caller."""
    svc = services(request)
    key = svc.settings.ack_key
    if key is None:
        raise NotFoundError("acknowledgement links are not served here (no HV_API_ACK_KEY)")
    try:
        claims = ack_token.verify(token, key.get_secret_value().encode(), svc.clock())
    except AckTokenError:
        raise ForbiddenError("the acknowledgement link is invalid or has expired") from None
    return handle_alert(
        request,
        principal,
        claims.alert_id,
        ACKNOWLEDGE,
        body.note,
        team_id=claims.team_id,
        link_member_id=claims.member_id,
    )


# --- webhooks (team coordinators) ------------------------------------------------------------


def _team_admin(gate: Gate, team_id: str) -> None:
    member_id = _member_only(gate)
    gate.require_scope(Action.READ, "Endpoint")
    found = members(gate.conn, ids=(member_id,))
    if not found or found[0].team_id != team_id:
        raise ForbiddenError("only the team's own members see its webhooks")
    if found[0].role != "coordinator":
        raise ForbiddenError("only the team's coordinators see its webhooks")


@router.get("/teams/{team_id}/webhooks", response_model=list[EndpointView])
def list_webhooks(request: Request, principal: Auth, team_id: str) -> list[EndpointView]:
    """The team's webhook endpoints and their delivery health (secrets are never shown)."""

    def body(gate: Gate) -> list[EndpointView]:
        _team_admin(gate, team_id)
        return [
            EndpointView(
                endpoint_id=h.endpoint_id,
                url=h.url,
                enabled=h.enabled,
                disabled_reason=h.disabled_reason,
                failing_since=h.failing_since,
                pending=h.pending,
                last_attempt_at=h.last_attempt_at,
                last_outcome=h.last_outcome,
                last_status_code=h.last_status_code,
            )
            for h in endpoint_health(gate.conn, team_id)
        ]

    return gated(request, principal, "Endpoint", "search", body)


@router.get("/webhooks/{endpoint_id}/attempts", response_model=list[AttemptView])
def list_attempts(
    request: Request,
    principal: Auth,
    endpoint_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[AttemptView]:
    """The endpoint's latest delivery attempts, newest first."""

    def body(gate: Gate) -> list[AttemptView]:
        team_id = _endpoint_team(gate.conn, endpoint_id)
        _team_admin(gate, team_id)
        t = webhook_attempts.c
        rows = gate.conn.execute(
            sa.select(webhook_attempts)
            .where(t.endpoint_id == endpoint_id)
            .order_by(t.id.desc())
            .limit(limit)
        )
        return [
            AttemptView(
                attempt_id=r.id,
                delivery_id=r.delivery_id,
                attempt_number=r.attempt_number,
                started_at=r.started_at,
                latency_ms=r.latency_ms,
                status_code=r.status_code,
                outcome=r.outcome,
                error=r.error,
                retry_after_s=r.retry_after_s,
            )
            for r in rows
        ]

    return gated(request, principal, "Endpoint", "search", body)


def _endpoint_team(conn: sa.Connection, endpoint_id: str) -> str:
    from careteam.tables import webhook_endpoints  # noqa: PLC0415

    team_id = conn.execute(
        sa.select(webhook_endpoints.c.team_id).where(webhook_endpoints.c.id == endpoint_id)
    ).scalar()
    if team_id is None:
        raise NotFoundError("no webhook endpoint has that id")
    return str(team_id)


# --- consent -----------------------------------------------------------------------------------


def _grant_view(grant: Grant) -> GrantView:
    return GrantView(
        consent_id=grant.consent_id,
        patient_id=grant.patient_id,
        grantee_kind=grant.grantee_kind,
        grantee_id=grant.grantee_id,
        data_kinds=list(grant.data_kinds),
        period_start=grant.period_start,
        period_end=grant.period_end,
        method=grant.method,
        recorded_by=grant.recorded_by,
        recorded_at=grant.recorded_at,
        status=grant.status,
        withdrawn_at=grant.withdrawn_at,
    )


def _consent_writer(gate: Gate, patient_id: str) -> None:
    """A patient for their own record, or a member of a team the patient granted anything."""
    gate.require_scope(Action.CREATE, "Consent")
    caller = gate.caller
    if caller.patient_id is not None:
        if caller.patient_id != patient_id:
            raise ForbiddenError("a patient token records only its own patient's consent")
        return
    if caller.principal.actor is not Actor.MEMBER:
        raise ForbiddenError("backend (system) tokens record no consent")


@router.post("/patients/{patient_id}/consents", response_model=GrantView, status_code=201)
def grant_consent(request: Request, principal: Auth, patient_id: str, body: GrantBody) -> GrantView:
    """Record a consent grant of the patient (given in person, on paper, or in the app)."""

    def run(gate: Gate) -> GrantView:
        _consent_writer(gate, patient_id)
        start = body.period_start or gate.at
        try:
            grant = consent_store.grant(
                gate.conn,
                GrantRequest(
                    patient_id,
                    body.grantee_kind,
                    body.grantee_id,
                    tuple(body.data_kinds),
                    _aware(start, "period_start"),
                    _aware(body.period_end, "period_end") if body.period_end else None,
                    body.method,
                ),
                actor=gate.caller.audit_actor,
                at=gate.at,
            )
        except RecordNotFoundError as exc:
            raise NotFoundError(f"{exc.field}: no such record") from None
        except RecordInvalidFieldError as exc:
            raise InvalidRequestError(exc.field, exc.reason) from None
        return _grant_view(grant)

    return gated(request, principal, "Consent", "create", run)


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidRequestError(field, "must carry a time zone")
    return moment.astimezone(UTC)


@router.post("/consents/{consent_id}/withdraw", response_model=GrantView)
def withdraw_consent(
    request: Request, principal: Auth, consent_id: str, body: WithdrawBody
) -> GrantView:
    """Withdraw a grant now (the patient, or a member of the team it names)."""

    def run(gate: Gate) -> GrantView:
        try:
            grant = consent_store.get_grant(gate.conn, consent_id)
        except RecordNotFoundError:
            raise NotFoundError("no consent grant has that id") from None
        _consent_writer(gate, grant.patient_id)
        accessor = gate.caller.accessor
        if accessor is not None and (grant.grantee_kind, grant.grantee_id) not in (
            ("team", accessor.team_id),
            ("institution", accessor.institution_id),
        ):
            raise ForbiddenError(
                "a member withdraws only grants that name their team or institution"
            )
        try:
            done = consent_store.withdraw(
                gate.conn, consent_id, actor=gate.caller.audit_actor, at=gate.at, reason=body.reason
            )
        except RecordInvalidFieldError as exc:
            raise InvalidRequestError(exc.field, exc.reason) from None
        return _grant_view(done)

    return gated(request, principal, "Consent", "update", run)


# --- enrolment codes ---------------------------------------------------------------------------


@router.post(
    "/patients/{patient_id}/enrolment-codes", response_model=EnrolmentCode, status_code=201
)
def create_enrolment_code(
    request: Request, principal: Auth, patient_id: str, body: EnrolmentBody
) -> EnrolmentCode:
    """A single-use code for the patient's home hub (typed on its page), shown once."""

    def run(gate: Gate) -> EnrolmentCode:
        gate.refuse_scope(Action.CREATE, patient_id, "devices")
        _member_only(gate)
        gate.permit(patient_id, "devices", action="enrolment_code.create", audit_success=False)
        try:
            issued = enrolment_store.create_code(
                gate.conn,
                [patient_id],
                actor=gate.caller.audit_actor,
                at=gate.at,
                ttl=timedelta(seconds=body.ttl_s),
                gateway_id=body.gateway_id,
            )
        except RecordNotFoundError as exc:
            raise NotFoundError(f"{exc.field}: no such record") from None
        except RecordInvalidFieldError as exc:
            raise InvalidRequestError(exc.field, exc.reason) from None
        return EnrolmentCode(
            code_id=issued.code_id,
            code=issued.code,
            patient_ids=list(issued.patient_ids),
            expires_at=issued.expires_at,
        )

    return gated(request, principal, "Device", "create", run)
