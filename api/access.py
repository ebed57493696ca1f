"""Who may see what (adapter over the care-team record): callers, scopes, consent, audit.

Every request that touches patient data goes through a `Gate` in the request's one transaction:

- `Gate.require_scope` (SMART scope of the token's own context; 403 without it),
- `Gate.permit` for one patient: a patient token sees only its own patient; a member's team
  needs a current consent grant for the data kind (`careteam.consent_store.decide_for`,
  minimum necessary); a backend (``system``) token reads no patient data,
- and an audit entry (``data.read`` or ``audit.view``, success or denied, with the Consent that
  decided it) appended in the same transaction (`careteam.audit_store.append`).

A denial is audited too: `run_gated` commits the transaction before it answers with the error,
and a failure to write the audit trail answers 503 with no data (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from api.errors import ApiError, ConsentRequiredError, ForbiddenError, UnavailableError
from api.scopes import Action, allows
from api.tokens import Actor, Principal
from careteam import audit_store, consent_store, registry
from careteam.audit import Actor as AuditActor
from careteam.consent import Accessor, Decision, permitted_kinds
from careteam.errors import CareteamError, NotFoundError
from careteam.kinds import READING_KIND_TO_DATA_KIND

log = logging.getLogger(__name__)
T = TypeVar("T")

# Words for a person, per consent deny reason (careteam.consent.Decision.reason).
_DENY_WORDS: Final[Mapping[str, str]] = {
    "no_grant": "the patient has not granted your team access",
    "kind_not_granted": "the patient's consent does not cover this kind of data",
    "not_yet_valid": "the patient's consent is not in force yet",
    "expired": "the patient's consent has expired",
    "withdrawn": "the patient has withdrawn consent",
    "unknown_kind": "this kind of data is not shared with care teams",
}


def data_kind_of_reading(kind: str) -> str:
    """The consent data kind a reading kind falls under (its own name when not mapped)."""
    return READING_KIND_TO_DATA_KIND.get(kind, kind)


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller with what the record says about them.

    `accessor` is the member's team and institution (consent is granted to those).
    """

    principal: Principal
    source: str
    accessor: Accessor | None = None

    @property
    def audit_actor(self) -> AuditActor:
        """The caller as the audit trail names them (the token id as purpose of use)."""
        return AuditActor(
            self.principal.actor.value,
            self.principal.subject,
            source=self.source,
            purpose=f"token:{self.principal.token_id}",
        )

    @property
    def patient_id(self) -> str | None:
        """The patient of a patient token."""
        return self.principal.subject if self.principal.actor is Actor.PATIENT else None


def resolve_caller(conn: sa.Connection, principal: Principal, source: str) -> Caller:
    """Look the caller up in the record.

    Raises:
        ForbiddenError: a member token whose member is unknown or no longer active.
    """
    if principal.actor is not Actor.MEMBER:
        return Caller(principal, source)
    try:
        member = registry.get_member(conn, principal.subject)
    except NotFoundError:
        raise ForbiddenError("the token's member is not in the record") from None
    if not member.active:
        raise ForbiddenError("the token's member is no longer active")
    return Caller(principal, source, registry.accessor_for_member(conn, member.member_id))


@dataclass
class Gate:
    """Scope, compartment and consent checks for one request, each audited."""

    conn: sa.Connection
    caller: Caller
    at: datetime
    resource_type: str
    interaction: str  # read, search, update, create
    audited: int = field(default=0)

    def require_scope(self, action: Action, resource_type: str | None = None) -> None:
        """Refuse (403) a token without a scope for `action` on the resource type.

        Raises:
            ForbiddenError: no scope of the token's context covers it.
        """
        kind = resource_type or self.resource_type
        p = self.caller.principal
        if not allows(p.scopes, p.actor.context, kind, action):
            raise ForbiddenError(
                f"the token has no {p.actor.context.value}/ scope to {action.name.lower()} {kind}"
            )

    def decide(self, patient_id: str, data_kind: str | None) -> Decision:
        """The decision for one patient and data kind (None: any kind the patient shares)."""
        caller = self.caller
        actor = caller.principal.actor
        if actor is Actor.PATIENT:
            if patient_id == caller.principal.subject:
                return Decision(True, "own_record")
            return Decision(False, "other_patient")
        if actor is Actor.SYSTEM or caller.accessor is None:
            return Decision(False, "system_client")
        if data_kind is None:
            grants = consent_store.grants_for_patient(self.conn, patient_id)
            if permitted_kinds(grants, caller.accessor, patient_id, self.at):
                return Decision(True, "granted")
            return Decision(False, "no_grant")
        return consent_store.decide_for(self.conn, caller.accessor, patient_id, data_kind, self.at)

    def record(
        self,
        patient_id: str | None,
        *,
        data_kind: str | None,
        decision: Decision,
        entity_id: str | None = None,
        action: str = "data.read",
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Append the audit entry of one access (allowed or denied)."""
        caller = self.caller
        facts: dict[str, object] = {
            "interaction": self.interaction,
            "reason": decision.reason,
            "consent_id": decision.consent_id,
        }
        if caller.accessor is not None:
            facts["team_id"] = caller.accessor.team_id
        facts.update(detail or {})
        audit_store.append(
            self.conn,
            audit_store.record(
                caller.audit_actor,
                action,
                outcome="success" if decision.permit else "denied",
                patient_id=patient_id,
                entity_kind=self.resource_type,
                entity_id=entity_id,
                data_kind=data_kind,
                detail=facts,
            ),
            self.at,
        )
        self.audited += 1

    def permit(
        self,
        patient_id: str,
        data_kind: str | None,
        *,
        entity_id: str | None = None,
        action: str = "data.read",
        detail: Mapping[str, object] | None = None,
        audit_success: bool = True,
    ) -> Decision:
        """Decide, audit, and refuse a denied access.

        `audit_success` False leaves a permitted access's entry to the write that follows it
        (a consent grant, an enrolment code: the record audits those itself).

        Raises:
            ConsentRequiredError: a member's team has no current grant (403, says why).
            ForbiddenError: a patient token for another patient, or a backend token.
        """
        decision = self.decide(patient_id, data_kind)
        if decision.permit and not audit_success:
            return decision
        self.record(
            patient_id,
            data_kind=data_kind,
            decision=decision,
            entity_id=entity_id,
            action=action,
            detail=detail,
        )
        if decision.permit:
            return decision
        if decision.reason == "other_patient":
            raise ForbiddenError("a patient token reads only its own patient's data")
        if decision.reason == "system_client":
            raise ForbiddenError("backend (system) tokens read no patient data")
        words = _DENY_WORDS.get(decision.reason, "consent refuses this access")
        raise ConsentRequiredError(f"consent: {words}", data_kind or "any")

    def refuse_scope(self, action: Action, patient_id: str | None, data_kind: str | None) -> None:
        """`require_scope`, with the refusal audited when it names a patient."""
        try:
            self.require_scope(action)
        except ForbiddenError as exc:
            if patient_id is not None:
                self.record(
                    patient_id,
                    data_kind=data_kind,
                    decision=Decision(False, "scope"),
                )
            raise exc from None

    def patients_for(self, data_kinds: Iterable[str]) -> dict[str, set[str]]:
        """For a search without ``patient``: per patient, the kinds of `data_kinds` the caller
        may see (a patient token: its own; a member: every current grant to the team)."""
        wanted = set(data_kinds)
        caller = self.caller
        if caller.patient_id is not None:
            return {caller.patient_id: wanted}
        if caller.accessor is None:
            return {}
        found: dict[str, set[str]] = {}
        for grant in consent_store.grants_for_team(self.conn, caller.accessor.team_id):
            if grant.current(self.at):
                found.setdefault(grant.patient_id, set()).update(
                    wanted.intersection(grant.data_kinds)
                )
        return {p: k for p, k in found.items() if k}


def run_gated(
    engine: sa.Engine,
    principal: Principal,
    *,
    source: str,
    at: datetime,
    resource_type: str,
    interaction: str,
    body: Callable[[Gate], T],
) -> T:
    """Run `body` with a `Gate` in one transaction; audited denials are committed.

    Raises:
        ApiError: what `body` raised (after committing the audit entries it wrote).
        UnavailableError: the record store or audit trail failed (nothing is returned).
    """
    pending: ApiError | None = None
    try:
        with engine.begin() as conn:
            gate = Gate(
                conn, resolve_caller(conn, principal, source), at, resource_type, interaction
            )
            try:
                return body(gate)
            except ApiError as exc:
                pending = exc  # leaving the block normally commits the denial's audit entry
    except (SQLAlchemyError, CareteamError) as exc:
        log.error("record store or audit trail failed: %s", type(exc).__name__)
        raise UnavailableError("the record is unavailable; nothing was returned") from None
    assert pending is not None
    raise pending
