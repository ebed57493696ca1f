"""Reads of alerts and the care-team record for the API (adapter over SQLAlchemy Core).

Alerts come from the engine's tables (`alerts`, `alert_history`) with their handling from
delivery's (`alert_confirmations`: acknowledgement, escalation tier); members, teams, consent
grants and audit entries from the care-team record (`careteam.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from alerts.delivery.tables import RESOLVE, alert_actions, alert_confirmations
from alerts.engine.tables import alert_history, alerts
from api.fhir.resources import AlertRecord, MemberRecord
from careteam import tables as ct
from careteam.audit import AuditEntry


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _closed_at() -> sa.ScalarSelect[Any]:
    """When a clinician first resolved the alert of the row (NULL when none did)."""
    h = alert_actions.c
    return (
        sa.select(sa.func.min(h.at))
        .where(h.alert_id == alerts.c.alert_id, h.action == RESOLVE)
        .correlate(alerts)
        .scalar_subquery()
    )


def _alert_select() -> sa.Select[Any]:
    a, c = alerts.c, alert_confirmations.c
    return sa.select(
        alerts,
        c.acknowledged_at,
        c.acknowledged_by,
        _closed_at().label("closed_at"),
    ).select_from(alerts.outerjoin(alert_confirmations, c.alert_id == a.alert_id))


def _alert(row: sa.Row[Any]) -> AlertRecord:
    m = row._mapping
    opened = _utc(m["opened_at"])
    updated = _utc(m["updated_at"])
    assert opened is not None and updated is not None
    return AlertRecord(
        alert_id=m["alert_id"],
        patient_id=m["patient_id"],
        rule_id=m["rule_id"],
        rule_version=m["rule_version"],
        priority=m["priority"],
        status=m["status"],
        opened_at=opened,
        updated_at=updated,
        resolved_at=_utc(m["resolved_at"]),
        acknowledged_at=_utc(m["acknowledged_at"]),
        acknowledged_by=m["acknowledged_by"],
        closed_at=_utc(m.get("closed_at")),
    )


def alert_by_id(conn: sa.Connection, alert_id: str) -> AlertRecord | None:
    """One alert with its handling, or None."""
    row = conn.execute(_alert_select().where(alerts.c.alert_id == alert_id)).first()
    return _alert(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class AlertPage:
    """A page of alerts and the position after its last one."""

    alerts: list[AlertRecord]
    next_cursor: tuple[str, str] | None


def search_alerts(
    conn: sa.Connection,
    *,
    patient_ids: frozenset[str],
    active: bool | None,
    count: int,
    cursor: tuple[str, str] | None,
) -> AlertPage:
    """Alerts of `patient_ids`, newest opened first."""
    if not patient_ids:
        return AlertPage([], None)
    a = alerts.c
    stmt = _alert_select().where(a.patient_id.in_(sorted(patient_ids)))
    if active is True:
        stmt = stmt.where(a.status == "open", _closed_at().is_(None))
    elif active is False:
        stmt = stmt.where(sa.or_(a.status != "open", _closed_at().is_not(None)))
    if cursor is not None:
        at = datetime.fromisoformat(cursor[0])
        stmt = stmt.where(
            sa.or_(a.opened_at < at, sa.and_(a.opened_at == at, a.alert_id < cursor[1]))
        )
    rows = conn.execute(stmt.order_by(a.opened_at.desc(), a.alert_id.desc()).limit(count + 1))
    found = [_alert(r) for r in rows]
    if len(found) <= count:
        return AlertPage(found, None)
    last = found[count - 1]
    return AlertPage(found[:count], (last.opened_at.isoformat(), last.alert_id))


def alert_history_of(conn: sa.Connection, alert_id: str) -> list[dict[str, object]]:
    """Every revision of an alert with its evidence, oldest first."""
    h = alert_history.c
    rows = conn.execute(
        sa.select(h.revision, h.event_type, h.at, h.evidence)
        .where(h.alert_id == alert_id)
        .order_by(h.revision)
    )
    return [
        {
            "revision": r.revision,
            "event_type": r.event_type,
            "at": _utc(r.at),
            "evidence": r.evidence,
        }
        for r in rows
    ]


def alert_evidence(conn: sa.Connection, alert_id: str) -> Mapping[str, object]:
    """The current evidence of an alert."""
    value = conn.execute(sa.select(alerts.c.evidence).where(alerts.c.alert_id == alert_id)).scalar()
    return value if isinstance(value, dict) else {}


def members(
    conn: sa.Connection, *, ids: tuple[str, ...] = (), team_id: str | None = None
) -> list[MemberRecord]:
    """Members (all, by id, or of a team), by id."""
    m = ct.care_team_members.c
    stmt = sa.select(ct.care_team_members).order_by(m.id)
    if ids:
        stmt = stmt.where(m.id.in_(ids))
    if team_id is not None:
        stmt = stmt.where(m.team_id == team_id)
    return [
        MemberRecord(r.id, r.team_id, r.display_name, r.role, bool(r.active))
        for r in conn.execute(stmt)
    ]


@dataclass(frozen=True, slots=True)
class TeamRecord:
    """A team with its institution."""

    team_id: str
    name: str
    institution_id: str
    institution_name: str


def teams(conn: sa.Connection, *, ids: tuple[str, ...] = ()) -> list[TeamRecord]:
    """Teams (all or by id) with their institution, by id."""
    t, i = ct.care_teams.c, ct.institutions.c
    stmt = (
        sa.select(t.id, t.name, t.institution_id, i.name.label("institution_name"))
        .join(ct.institutions, i.id == t.institution_id)
        .order_by(t.id)
    )
    if ids:
        stmt = stmt.where(t.id.in_(ids))
    return [
        TeamRecord(r.id, r.name, r.institution_id, r.institution_name) for r in conn.execute(stmt)
    ]


def audit_entries(
    conn: sa.Connection,
    *,
    patient_id: str | None,
    actor: tuple[str, str] | None,
    seq: int | None = None,
    before_seq: int | None,
    count: int,
) -> list[AuditEntry]:
    """Audit entries, newest first, filtered by patient and/or actor (kind, id)."""
    c = ct.audit_log.c
    stmt = sa.select(ct.audit_log).order_by(c.seq.desc()).limit(count)
    if patient_id is not None:
        stmt = stmt.where(c.patient_id == patient_id)
    if actor is not None:
        stmt = stmt.where(c.actor_kind == actor[0], c.actor_id == actor[1])
    if seq is not None:
        stmt = stmt.where(c.seq == seq)
    if before_seq is not None:
        stmt = stmt.where(c.seq < before_seq)
    names = list(ct.audit_log.c.keys())
    return [AuditEntry(**{n: getattr(r, n) for n in names}) for r in conn.execute(stmt)]
