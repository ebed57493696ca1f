"""Bodies of the REST routes (pydantic: the edge), published in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Text the record store can hold: no NUL character.
NO_NUL = r"^[^\x00]*$"


class Reference(BaseModel):
    """A FHIR-style reference."""

    reference: str


class Handling(BaseModel):
    """Who acknowledged or resolved an alert, when, and their note."""

    member_id: str
    at: datetime
    note: str | None = None


class Revision(BaseModel):
    """One revision of an alert with the evidence it carried."""

    revision: int
    event_type: str
    at: datetime
    evidence: dict[str, Any]


class AlertLinks(BaseModel):
    """Where to read more (FHIR)."""

    flag: str
    patient: str
    readings: list[str]


class AlertDetail(BaseModel):
    """An alert with its evidence and history (what a webhook's ``links.alert`` names)."""

    alert_id: str
    patient: Reference
    rule_id: str
    rule_version: int
    priority: Literal["high", "medium", "low"]
    status: Literal["open", "resolved"]
    active: bool
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    evidence: dict[str, Any]
    history: list[Revision]
    acknowledged: Handling | None
    resolved_by_clinician: Handling | None
    notes: list[Handling]
    links: AlertLinks


class NoteBody(BaseModel):
    """A note with an acknowledgement or a resolution."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, min_length=1, max_length=2000, pattern=NO_NUL)


class ResolveBody(BaseModel):
    """A clinician's resolution: why it is closed."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class HandlingResult(BaseModel):
    """The outcome of an acknowledgement or a resolution."""

    alert_id: str
    action: Literal["acknowledge", "resolve"]
    first: bool


class EndpointView(BaseModel):
    """A team's webhook endpoint and its delivery health (never its secret)."""

    endpoint_id: str
    url: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    pending: int
    last_attempt_at: datetime | None
    last_outcome: str | None
    last_status_code: int | None


class AttemptView(BaseModel):
    """One delivery attempt."""

    attempt_id: int
    delivery_id: int
    attempt_number: int
    started_at: datetime
    latency_ms: float
    status_code: int | None
    outcome: str
    error: str | None
    retry_after_s: float | None


class GrantBody(BaseModel):
    """A consent grant to record (FHIR Consent semantics)."""

    model_config = ConfigDict(extra="forbid")
    grantee_kind: Literal["team", "institution"]
    grantee_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    data_kinds: list[Annotated[str, Field(max_length=64, pattern=NO_NUL)]] = Field(
        min_length=1, max_length=16
    )
    period_start: datetime | None = None
    period_end: datetime | None = None
    method: Literal["in_person", "paper", "app"]


class GrantView(BaseModel):
    """A consent grant as recorded."""

    consent_id: str
    patient_id: str
    grantee_kind: str
    grantee_id: str
    data_kinds: list[str]
    period_start: datetime
    period_end: datetime | None
    method: str
    recorded_by: str
    recorded_at: datetime
    status: str
    withdrawn_at: datetime | None


class WithdrawBody(BaseModel):
    """Why a grant is withdrawn."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL)


class EnrolmentBody(BaseModel):
    """An enrolment code request for a patient's hub."""

    model_config = ConfigDict(extra="forbid")
    ttl_s: int = Field(default=4 * 3600, ge=300, le=72 * 3600)
    gateway_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)


class EnrolmentCode(BaseModel):
    """A single-use code to type on the hub's page (shown once)."""

    code_id: str
    code: str
    patient_ids: list[str]
    expires_at: datetime
