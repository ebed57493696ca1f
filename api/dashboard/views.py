"""What the dashboard shows, read through the API's gate (consent checked, every read audited).

Each section of a page is one data kind: the gate decides it (`Gate.decide`, the same consent
decision as the REST and FHIR routes) and records the access, allowed or denied, in the audit
trail (`Gate.record`), in the request's one transaction (`api.access.run_gated`). A section
whose kind the patient has not granted is shown as "no consent" rather than failing the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa

from alerts.rules.catalog import RULES_BY_ID
from api.access import Gate
from api.errors import NotFoundError
from api.fhir.resources import AlertRecord, DeviceRecord
from api.readings import devices_of
from api.record_queries import (
    alert_by_id,
    alert_evidence,
    alert_history_of,
    audit_entries,
    search_alerts,
)
from careteam import consent_store, enrolment_store, record, registry
from careteam.audit import AuditEntry
from careteam.consent import Grant
from careteam.errors import NotFoundError as RecordNotFoundError
from careteam.patients import PatientProfile
from ingest import schema
from ingest.read_port import ReadingColumns, readings_for_patient

WINDOW: Final = timedelta(days=14)
READING_KINDS: Final = ("glucose", "blood_pressure")
PRIORITY_ORDER: Final = {"high": 0, "medium": 1, "low": 2}
AUDIT_ROWS: Final = 40


@dataclass(frozen=True, slots=True)
class Section:
    """A data kind the page wanted, and whether consent let the caller see it."""

    kind: str
    permitted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class HubState:
    """An enrolled hub serving the patient, as ingest last heard from it (`hub_status`: the
    hub's retained status, or its last will when it dropped off, and its heartbeats)."""

    gateway_id: str
    online: bool | None  # None: the hub has not reported a status since it was enrolled
    last_heard_at: datetime | None  # its last status or heartbeat


@dataclass(frozen=True, slots=True)
class PatientRow:
    """One line of the patient list."""

    profile: PatientProfile
    open_alerts: Mapping[str, int]  # priority -> count (empty when alerts are not granted)
    alerts_permitted: bool
    last_reading: Mapping[str, datetime | None]  # permitted reading kinds only
    hub_last_seen: datetime | None  # the last reading received from any of its hubs
    hubs: tuple[HubState, ...] = ()  # empty when devices are not granted


@dataclass
class PatientPage:
    """Everything the patient page draws, kind by kind."""

    profile: PatientProfile
    sections: dict[str, Section] = field(default_factory=dict)
    readings: dict[str, ReadingColumns] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)
    evidence: dict[str, Mapping[str, object]] = field(default_factory=dict)
    history: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    devices: list[DeviceRecord] = field(default_factory=list)
    device_last_sync: dict[str, datetime] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    systolic_threshold_mmhg: float = 130.0
    diastolic_threshold_mmhg: float = 80.0
    glucose_low_mmol_l: float = 3.9
    glucose_high_mmol_l: float = 10.0
    names: dict[str, str] = field(default_factory=dict)  # team and member ids -> their names


def _section(gate: Gate, patient_id: str, kind: str, entity: str) -> Section:
    decision = gate.decide(patient_id, kind)
    gate.record(
        patient_id,
        data_kind=kind,
        decision=decision,
        entity_id=entity,
        detail={"view": "dashboard"},
    )
    return Section(kind, decision.permit, decision.reason)


def _last_times(conn: sa.Connection, patient_id: str) -> dict[str, datetime | None]:
    r = schema.readings.c
    rows = conn.execute(
        sa.select(r.kind, sa.func.max(r.measured_at))
        .where(r.patient_id == patient_id)
        .group_by(r.kind)
    )
    return {str(kind): _aware(at) for kind, at in rows}


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _hub_last_seen(conn: sa.Connection, patient_id: str) -> datetime | None:
    r = schema.readings.c
    at = conn.execute(sa.select(sa.func.max(r.received_at)).where(r.patient_id == patient_id))
    return _aware(at.scalar())


def _hubs(conn: sa.Connection, patient_id: str) -> tuple[HubState, ...]:
    gateway_ids = enrolment_store.patient_gateways(conn, patient_id)
    if not gateway_ids:
        return ()
    h = schema.hub_status.c
    heard = {
        row.gateway_id: row
        for row in conn.execute(
            sa.select(h.gateway_id, h.online, h.status_at, h.heartbeat_at).where(
                h.gateway_id.in_(gateway_ids)
            )
        )
    }
    hubs = []
    for gateway_id in gateway_ids:
        row = heard.get(gateway_id)
        if row is None:
            hubs.append(HubState(gateway_id, None, None))
            continue
        times = [t for t in (_aware(row.status_at), _aware(row.heartbeat_at)) if t is not None]
        hubs.append(HubState(gateway_id, bool(row.online), max(times, default=None)))
    return tuple(hubs)


def patient_list(gate: Gate) -> list[PatientRow]:
    """The patients whose consent lets the caller's team see something, sorted by urgency."""
    scope = gate.patients_for((*READING_KINDS, "alerts", "devices"))
    rows = []
    for patient_id in sorted(scope):
        try:
            profile = record.get_patient(gate.conn, patient_id)
        except RecordNotFoundError:
            continue
        granted = scope[patient_id]
        for kind in sorted(granted):
            _section(gate, patient_id, kind, "patient-list")
        counts: dict[str, int] = {}
        if "alerts" in granted:
            page = search_alerts(
                gate.conn, patient_ids=frozenset({patient_id}), active=True, count=500, cursor=None
            )
            for alert in page.alerts:
                counts[alert.priority] = counts.get(alert.priority, 0) + 1
        last = _last_times(gate.conn, patient_id)
        rows.append(
            PatientRow(
                profile=profile,
                open_alerts=counts,
                alerts_permitted="alerts" in granted,
                last_reading={k: last.get(k) for k in READING_KINDS if k in granted},
                hub_last_seen=_hub_last_seen(gate.conn, patient_id)
                if "devices" in granted
                else None,
                hubs=_hubs(gate.conn, patient_id) if "devices" in granted else (),
            )
        )
    rows.sort(
        key=lambda r: (
            min((PRIORITY_ORDER.get(p, 3) for p in r.open_alerts), default=3),
            -sum(r.open_alerts.values()),
            r.profile.display_name,
        )
    )
    return rows


def patient_page(gate: Gate, patient_id: str) -> PatientPage:
    """The patient's page, each section read only where consent allows (all audited).

    Raises:
        NotFoundError: no such patient.
        ConsentRequiredError: the caller's team has no current grant at all for the patient.
    """
    try:
        profile = record.get_patient(gate.conn, patient_id)
    except RecordNotFoundError:
        raise NotFoundError("no patient has that id") from None
    gate.permit(patient_id, None, entity_id=patient_id, detail={"view": "dashboard"})
    page = PatientPage(profile)
    home = RULES_BY_ID["bp.home_aha_ama_2020"].params
    page.systolic_threshold_mmhg = float(home["systolic_mmhg"])
    page.diastolic_threshold_mmhg = float(home["diastolic_mmhg"])
    tir = RULES_BY_ID["glucose.tir_14d"].params
    page.glucose_low_mmol_l = round(float(tir["low_mmol_l"]), 1)
    page.glucose_high_mmol_l = float(tir["high_mmol_l"])
    start = gate.at - WINDOW
    for kind in READING_KINDS:
        section = _section(gate, patient_id, kind, f"readings:{kind}")
        page.sections[kind] = section
        if section.permitted:
            page.readings[kind] = readings_for_patient(gate.conn, patient_id, kind, start, gate.at)
    alerts_section = _section(gate, patient_id, "alerts", "alerts")
    page.sections["alerts"] = alerts_section
    if alerts_section.permitted:
        found = search_alerts(
            gate.conn, patient_ids=frozenset({patient_id}), active=None, count=100, cursor=None
        ).alerts
        found.sort(key=lambda a: (not a.active, PRIORITY_ORDER.get(a.priority, 3)))
        page.alerts = found
        for alert in found:
            page.evidence[alert.alert_id] = alert_evidence(gate.conn, alert.alert_id)
            page.history[alert.alert_id] = alert_history_of(gate.conn, alert.alert_id)
    devices_section = _section(gate, patient_id, "devices", "devices")
    page.sections["devices"] = devices_section
    if devices_section.permitted:
        page.devices = devices_of(gate.conn, patient_id)
        r = schema.readings.c
        for device_id, at in gate.conn.execute(
            sa.select(r.device_id, sa.func.max(r.received_at))
            .where(r.patient_id == patient_id)
            .group_by(r.device_id)
        ):
            seen = _aware(at)
            if seen is not None:
                page.device_last_sync[str(device_id)] = seen
    # The patient's own consent record and who read it: shown to the care team reading it.
    page.grants = consent_store.grants_for_patient(gate.conn, patient_id)
    gate.record(
        patient_id,
        data_kind=None,
        decision=gate.decide(patient_id, None),
        entity_id="audit",
        action="audit.view",
        detail={"view": "dashboard"},
    )
    page.audit = audit_entries(
        gate.conn, patient_id=patient_id, actor=None, before_seq=None, count=AUDIT_ROWS
    )
    page.names = _names(gate.conn, page)
    return page


def _names(conn: sa.Connection, page: PatientPage) -> dict[str, str]:
    """Display names of the teams and members a page mentions (ids stay when unknown)."""
    names: dict[str, str] = {}
    for grant in page.grants:
        if grant.grantee_kind == "team" and grant.grantee_id not in names:
            try:
                team = registry.get_team(conn, grant.grantee_id)
                institution = registry.get_institution(conn, team.institution_id)
            except RecordNotFoundError:
                continue
            names[grant.grantee_id] = f"{team.name}, {institution.name}"
    member_ids = {e.actor_id for e in page.audit if e.actor_kind == "member"}
    member_ids |= {a.acknowledged_by for a in page.alerts if a.acknowledged_by}
    for member_id in member_ids - names.keys():
        try:
            names[member_id] = registry.get_member(conn, member_id).display_name
        except RecordNotFoundError:
            continue
    return names


def alert_patient(conn: sa.Connection, alert_id: str) -> str:
    """The patient an alert is about (for the redirect after acknowledging it).

    Raises:
        NotFoundError: no alert has that id.
    """
    alert = alert_by_id(conn, alert_id)
    if alert is None:
        raise NotFoundError("no alert has that id")
    return alert.patient_id
