"""Consent decisions (pure: grants and the time come in).

Semantics of FHIR R4 Consent (scope ``patient-privacy``, a ``permit`` provision): a grant names
the patient, the grantee (`provision.actor`: one care team, or a whole institution, which covers
each of its teams), the data kinds (`provision.class`), a period (`provision.period`), how it was
given (`Consent.sourceAttachment`/verification: in person, paper, app) and who recorded it.
Status ``active`` until withdrawn (``inactive``); withdrawal takes effect at once. Nothing is
permitted without a grant (deny by default), and a grant permits only the kinds it names
(minimum necessary).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from careteam.errors import InvalidFieldError
from careteam.kinds import DATA_KINDS, parse_data_kinds

GRANTEE_KINDS: Final = ("team", "institution")
METHODS: Final = ("in_person", "paper", "app", "migrated")
ACTIVE: Final = "active"
INACTIVE: Final = "inactive"


@dataclass(frozen=True, slots=True)
class Grant:
    """One consent grant as stored."""

    consent_id: str
    patient_id: str
    grantee_kind: str
    grantee_id: str
    data_kinds: tuple[str, ...]
    period_start: datetime
    period_end: datetime | None
    method: str
    recorded_by: str
    recorded_at: datetime
    status: str
    withdrawn_at: datetime | None = None

    def current(self, at: datetime) -> bool:
        """True when the grant is active and `at` is inside its period."""
        return (
            self.status == ACTIVE
            and self.period_start <= at
            and (self.period_end is None or at < self.period_end)
        )


@dataclass(frozen=True, slots=True)
class Accessor:
    """Who asks: a team (with its institution), optionally one of its members."""

    team_id: str
    institution_id: str
    member_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Permit or deny, why, and the Consent that decided it (when one did).

    `reason` is ``"granted"`` on a permit; on a deny one of ``"no_grant"`` (nothing names this
    grantee), ``"kind_not_granted"``, ``"not_yet_valid"``, ``"expired"``, ``"withdrawn"``,
    ``"unknown_kind"``.
    """

    permit: bool
    reason: str
    consent_id: str | None = None


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A new grant as typed by whoever records it (validated by `validate_grant`)."""

    patient_id: str
    grantee_kind: str
    grantee_id: str
    data_kinds: tuple[str, ...]
    period_start: datetime
    period_end: datetime | None
    method: str


def validate_grant(request: GrantRequest) -> GrantRequest:
    """Check a new grant; returns it with its kinds normalised.

    Raises:
        InvalidFieldError: ``"grantee_kind"``, ``"data_kinds"`` (none or unknown),
            ``"period_start"``/``"period_end"`` (naive, or an end not after the start),
            ``"method"``.
    """
    if request.grantee_kind not in GRANTEE_KINDS:
        raise InvalidFieldError("grantee_kind", f"must be one of {', '.join(GRANTEE_KINDS)}")
    kinds = parse_data_kinds(request.data_kinds)
    if request.period_start.tzinfo is None:
        raise InvalidFieldError("period_start", "must be an aware datetime")
    if request.period_end is not None:
        if request.period_end.tzinfo is None:
            raise InvalidFieldError("period_end", "must be an aware datetime")
        if request.period_end <= request.period_start:
            raise InvalidFieldError("period_end", "must be after period_start")
    if request.method not in METHODS:
        raise InvalidFieldError("method", f"must be one of {', '.join(METHODS)}")
    return GrantRequest(
        request.patient_id,
        request.grantee_kind,
        request.grantee_id,
        kinds,
        request.period_start,
        request.period_end,
        request.method,
    )


def _names(grant: Grant, who: Accessor) -> bool:
    if grant.grantee_kind == "team":
        return grant.grantee_id == who.team_id
    return grant.grantee_kind == "institution" and grant.grantee_id == who.institution_id


# When no grant permits, the deny reason of the grant that came closest (higher = closer).
_CLOSENESS: Final = {"withdrawn": 1, "expired": 2, "not_yet_valid": 3, "kind_not_granted": 4}


def decide(
    grants: Iterable[Grant], who: Accessor, patient_id: str, data_kind: str, at: datetime
) -> Decision:
    """May `who` see `data_kind` of `patient_id` at `at`?

    A team is covered by a grant to it or to its institution. The first current grant that
    names the kind permits (the oldest, for a stable Consent id); otherwise the deny reason of
    the closest miss.
    """
    if data_kind not in DATA_KINDS:
        return Decision(False, "unknown_kind")
    best: tuple[int, str, str] | None = None
    for grant in sorted(grants, key=lambda g: (g.recorded_at, g.consent_id)):
        if grant.patient_id != patient_id or not _names(grant, who):
            continue
        if grant.status != ACTIVE:
            reason = "withdrawn"
        elif at < grant.period_start:
            reason = "not_yet_valid"
        elif grant.period_end is not None and at >= grant.period_end:
            reason = "expired"
        elif data_kind not in grant.data_kinds:
            reason = "kind_not_granted"
        else:
            return Decision(True, "granted", grant.consent_id)
        closeness = _CLOSENESS[reason]
        if best is None or closeness > best[0]:
            best = (closeness, reason, grant.consent_id)
    if best is None:
        return Decision(False, "no_grant")
    return Decision(False, best[1], best[2])


def permitted_kinds(
    grants: Iterable[Grant], who: Accessor, patient_id: str, at: datetime
) -> set[str]:
    """Every data kind `who` may see of `patient_id` at `at` (minimum necessary views)."""
    kinds: set[str] = set()
    for grant in grants:
        if grant.patient_id == patient_id and _names(grant, who) and grant.current(at):
            kinds.update(grant.data_kinds)
    return kinds
