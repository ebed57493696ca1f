"""Consent decisions (pure) and grants in the record: team or institution grantees, kinds,
period, withdrawal, and the audited check."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from careteam import audit_store, consent_store, registry
from careteam.audit import Actor
from careteam.consent import Accessor, Grant, GrantRequest, decide
from careteam.errors import InvalidFieldError, NotFoundError
from tests.careteam.conftest import T0
from tests.support.record import TEST_ACTOR, ensure_patient

CLINIC = Accessor("team-a", "inst-1")
OTHER_TEAM_SAME_INSTITUTION = Accessor("team-b", "inst-1")


def _grant(**changes: object) -> Grant:
    base = {
        "consent_id": "c1",
        "patient_id": "p1",
        "grantee_kind": "team",
        "grantee_id": "team-a",
        "data_kinds": ("alerts", "glucose"),
        "period_start": T0,
        "period_end": T0 + timedelta(days=30),
        "method": "paper",
        "recorded_by": "nurse",
        "recorded_at": T0,
        "status": "active",
    }
    base.update(changes)
    return Grant(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("grant", "who", "kind", "at", "expected"),
    [
        (_grant(), CLINIC, "glucose", T0, (True, "granted")),
        (_grant(), CLINIC, "blood_pressure", T0, (False, "kind_not_granted")),
        (_grant(), CLINIC, "glucose", T0 - timedelta(seconds=1), (False, "not_yet_valid")),
        (_grant(), CLINIC, "glucose", T0 + timedelta(days=30), (False, "expired")),
        (_grant(status="inactive"), CLINIC, "glucose", T0, (False, "withdrawn")),
        (_grant(), OTHER_TEAM_SAME_INSTITUTION, "glucose", T0, (False, "no_grant")),
        (
            _grant(grantee_kind="institution", grantee_id="inst-1"),
            OTHER_TEAM_SAME_INSTITUTION,
            "glucose",
            T0,
            (True, "granted"),
        ),
        (_grant(patient_id="p2"), CLINIC, "glucose", T0, (False, "no_grant")),
        (_grant(), CLINIC, "heart_rate", T0, (False, "unknown_kind")),
    ],
)
def test_decisions(
    grant: Grant, who: Accessor, kind: str, at: object, expected: tuple[bool, str]
) -> None:
    decision = decide([grant], who, "p1", kind, at)  # type: ignore[arg-type]
    assert (decision.permit, decision.reason) == expected
    assert decision.consent_id == (
        "c1" if expected[1] != "no_grant" and kind != "heart_rate" else None
    )


def test_a_current_grant_wins_over_a_withdrawn_one() -> None:
    old = _grant(consent_id="c0", status="inactive")
    new = _grant(consent_id="c2", recorded_at=T0 + timedelta(days=1))
    assert decide([old, new], CLINIC, "p1", "alerts", T0 + timedelta(days=2)).consent_id == "c2"


def _team(conn: sa.Connection) -> tuple[str, str]:
    inst = registry.add_institution(conn, "Community centre", "community_health_centre", T0)
    return inst, registry.add_team(conn, inst, "Family doctors", T0)


def test_grant_check_and_withdraw_in_the_record(store: sa.Engine) -> None:
    with store.begin() as conn:
        ensure_patient(conn, "p1", T0)
        inst, team = _team(conn)
        grant = consent_store.grant(
            conn,
            GrantRequest("p1", "institution", inst, ("glucose",), T0, None, "app"),
            actor=TEST_ACTOR,
            at=T0,
        )
    who = Accessor(team, inst, "m-1")
    reader = Actor("member", "m-1", source="198.51.100.4")
    with store.begin() as conn:
        allowed = consent_store.check(
            conn, who, reader, patient_id="p1", data_kind="glucose", at=T0 + timedelta(hours=1)
        )
        refused = consent_store.check(
            conn, who, reader, patient_id="p1", data_kind="blood_pressure", at=T0
        )
    assert allowed.permit and allowed.consent_id == grant.consent_id
    assert not refused.permit and refused.reason == "kind_not_granted"
    later = T0 + timedelta(hours=2)
    with store.begin() as conn:
        consent_store.withdraw(
            conn, grant.consent_id, actor=Actor("patient", "p1"), at=later, reason="moved"
        )
        after = consent_store.decide_for(conn, who, "p1", "glucose", later)
    assert not after.permit and after.reason == "withdrawn"
    with store.connect() as conn:
        trail = [(e.action, e.outcome) for e in audit_store.entries(conn, patient_id="p1")]
        assert audit_store.verify(conn).ok
    assert trail == [
        ("patient.register", "success"),
        ("consent.grant", "success"),
        ("data.read", "success"),
        ("data.read", "denied"),
        ("consent.withdraw", "success"),
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_kinds": ("glucose", "dna")}, "data_kinds"),
        ({"data_kinds": ()}, "data_kinds"),
        ({"period_end": T0 - timedelta(days=1)}, "period_end"),
        ({"method": "telepathy"}, "method"),
        ({"grantee_kind": "member"}, "grantee_kind"),
    ],
)
def test_bad_grants_name_the_field_and_write_nothing(
    store: sa.Engine, change: dict[str, object], field: str
) -> None:
    with store.begin() as conn:
        ensure_patient(conn, "p1", T0)
        _, team = _team(conn)
    fields: dict[str, object] = {
        "patient_id": "p1",
        "grantee_kind": "team",
        "grantee_id": team,
        "data_kinds": ("glucose",),
        "period_start": T0,
        "period_end": None,
        "method": "paper",
    }
    fields.update(change)
    with store.begin() as conn, pytest.raises(InvalidFieldError) as caught:
        consent_store.grant(conn, GrantRequest(**fields), actor=TEST_ACTOR, at=T0)  # type: ignore[arg-type]
    assert caught.value.field == field
    with store.connect() as conn:
        assert consent_store.grants_for_patient(conn, "p1") == []


def test_unknown_patient_or_grantee_is_named(store: sa.Engine) -> None:
    with store.begin() as conn:
        ensure_patient(conn, "p1", T0)
        _, team = _team(conn)
    for request, field in (
        (GrantRequest("nobody", "team", team, ("alerts",), T0, None, "paper"), "patient_id"),
        (GrantRequest("p1", "team", "no-team", ("alerts",), T0, None, "paper"), "team_id"),
        (GrantRequest("p1", "institution", "x", ("alerts",), T0, None, "paper"), "institution_id"),
    ):
        with store.begin() as conn, pytest.raises(NotFoundError) as caught:
            consent_store.grant(conn, request, actor=TEST_ACTOR, at=T0)
        assert caught.value.field == field
