"""The REST routes: alert detail with evidence and history, acknowledge and resolve with a note,
webhooks for team coordinators, consent grant and withdrawal, enrolment codes."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from api.fhir_models import validated
from api.tokens import Actor
from careteam.tables import audit_log
from tests.api.record import Seeded
from tests.api.support import token


def _h(actor: Actor, subject: str, scope: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(actor, subject, scope)}


def test_alert_detail_has_evidence_history_and_links_that_resolve(
    base_url: str, seeded: Seeded
) -> None:
    headers = _h(Actor.MEMBER, seeded.member_a, "user/*.read")
    response = httpx.get(f"{base_url}/v1/alerts/{seeded.alert_p1}", headers=headers)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["rule_id"] == "glucose.hypo_l2"
    assert detail["priority"] == "high"
    assert detail["patient"] == {"reference": "Patient/P1"}
    assert seeded.glucose_reading in detail["evidence"]["reading_ids"]
    assert [h["revision"] for h in detail["history"]] == [1]
    assert detail["history"][0]["event_type"] == "alert.opened"
    for url in [detail["links"]["flag"], detail["links"]["patient"], *detail["links"]["readings"]]:
        linked = httpx.get(url, headers=headers)
        assert linked.status_code == 200, url
        validated(linked.json())


def test_alert_detail_needs_the_alerts_grant(base_url: str, seeded: Seeded) -> None:
    response = httpx.get(
        f"{base_url}/v1/alerts/{seeded.alert_p1}",
        headers=_h(Actor.MEMBER, seeded.member_b, "user/*.read"),
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "reason": "consent: the patient's consent does not cover this kind of data",
    }


def test_acknowledge_then_resolve_with_notes(
    base_url: str, record_engine: sa.Engine, seeded: Seeded
) -> None:
    url = f"{base_url}/v1/alerts/{seeded.alert_p1}"
    reader = _h(Actor.MEMBER, seeded.member_a, "user/Flag.read")
    writer = _h(Actor.MEMBER, seeded.member_a, "user/Flag.read user/Flag.write")
    assert (
        httpx.post(f"{url}/acknowledge", json={"note": "called"}, headers=reader).status_code == 403
    )
    patient = _h(Actor.PATIENT, "P1", "patient/Flag.write")
    assert httpx.post(f"{url}/acknowledge", json={}, headers=patient).status_code == 403
    assert httpx.post(f"{url}/acknowledge", json={"note": ""}, headers=writer).status_code == 422
    nul = httpx.post(f"{url}/acknowledge", json={"note": "a\u0000b"}, headers=writer)
    assert nul.status_code == 422
    assert "\u0000" not in nul.text and "a\x00b" not in nul.text  # the input is not echoed
    first = httpx.post(
        f"{url}/acknowledge", json={"note": "called the patient, eating"}, headers=writer
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"alert_id": seeded.alert_p1, "action": "acknowledge", "first": True}
    again = httpx.post(f"{url}/acknowledge", json={}, headers=writer)
    assert again.json()["first"] is False
    flag = validated(httpx.get(f"{base_url}/fhir/Flag/{seeded.alert_p1}", headers=reader).json())
    assert flag["status"] == "active"
    assert (
        httpx.post(f"{url}/resolve", json={}, headers=writer).status_code == 422
    )  # a note is required
    resolved = httpx.post(
        f"{url}/resolve", json={"note": "recovered, 6.1 after juice"}, headers=writer
    )
    assert resolved.json() == {"alert_id": seeded.alert_p1, "action": "resolve", "first": True}
    detail = httpx.get(url, headers=reader).json()
    assert detail["acknowledged"]["member_id"] == seeded.member_a
    assert detail["acknowledged"]["note"] == "called the patient, eating"
    assert detail["resolved_by_clinician"]["note"] == "recovered, 6.1 after juice"
    assert detail["active"] is False
    flag = validated(httpx.get(f"{base_url}/fhir/Flag/{seeded.alert_p1}", headers=reader).json())
    assert flag["status"] == "inactive"
    with record_engine.connect() as conn:
        actions = set(
            conn.execute(
                sa.select(audit_log.c.action, audit_log.c.outcome).where(
                    audit_log.c.actor_id == seeded.member_a,
                    audit_log.c.entity_id == seeded.alert_p1,
                )
            )
        )
    assert ("alert.acknowledge", "success") in actions
    assert ("alert.resolve", "success") in actions


def test_webhooks_are_for_the_teams_coordinators(base_url: str, seeded: Seeded) -> None:
    url = f"{base_url}/v1/teams/{seeded.team_a}/webhooks"
    admin = _h(Actor.MEMBER, seeded.admin_a, "user/Endpoint.read")
    assert httpx.get(url, headers=admin).status_code == 200
    assert (
        httpx.get(url, headers=_h(Actor.MEMBER, seeded.member_a, "user/Endpoint.read")).status_code
        == 403
    )
    assert (
        httpx.get(url, headers=_h(Actor.MEMBER, seeded.admin_a, "user/Flag.read")).status_code
        == 403
    )
    other = f"{base_url}/v1/teams/{seeded.team_b}/webhooks"
    assert httpx.get(other, headers=admin).status_code == 403
    missing = f"{base_url}/v1/webhooks/nothing/attempts"
    assert httpx.get(missing, headers=admin).status_code == 404


def test_consent_grant_then_withdrawal_takes_effect_at_once(base_url: str, seeded: Seeded) -> None:
    b_reads = _h(Actor.MEMBER, seeded.member_b, "user/*.read")
    flags = f"{base_url}/fhir/Flag?patient=P1"
    assert httpx.get(flags, headers=b_reads).status_code == 403
    patient = _h(Actor.PATIENT, "P1", "patient/Consent.write patient/Consent.read")
    body = {
        "grantee_kind": "team",
        "grantee_id": seeded.team_b,
        "data_kinds": ["alerts"],
        "method": "app",
    }
    other = httpx.post(f"{base_url}/v1/patients/P2/consents", json=body, headers=patient)
    assert other.status_code == 403
    bad = httpx.post(
        f"{base_url}/v1/patients/P1/consents", json={**body, "data_kinds": ["dna"]}, headers=patient
    )
    assert bad.status_code == 400
    assert "data_kinds" in bad.json()["reason"]
    granted = httpx.post(f"{base_url}/v1/patients/P1/consents", json=body, headers=patient)
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert (grant["status"], grant["recorded_by"], grant["data_kinds"]) == (
        "active",
        "P1",
        ["alerts"],
    )
    assert httpx.get(flags, headers=b_reads).status_code == 200
    withdraw = f"{base_url}/v1/consents/{grant['consent_id']}/withdraw"
    assert (
        httpx.post(
            withdraw,
            json={"reason": "x"},
            headers=_h(Actor.MEMBER, seeded.member_a, "user/Consent.write"),
        ).status_code
        == 403
    )
    done = httpx.post(withdraw, json={"reason": "changed my mind"}, headers=patient)
    assert done.status_code == 200
    assert done.json()["status"] == "inactive"
    denied = httpx.get(flags, headers=b_reads)
    assert denied.status_code == 403
    # team B still has its glucose grant: the closest miss is the kind, not the withdrawal
    assert denied.json()["issue"][0]["diagnostics"].startswith("consent:")


@pytest.mark.parametrize(("who", "status"), [("member_a", 201), ("member_b", 403), ("p1", 403)])
def test_enrolment_codes(base_url: str, seeded: Seeded, who: str, status: int) -> None:
    headers = {
        "member_a": _h(Actor.MEMBER, seeded.member_a, "user/Device.write"),
        "member_b": _h(Actor.MEMBER, seeded.member_b, "user/Device.write"),
        "p1": _h(Actor.PATIENT, "P1", "patient/Device.write"),
    }[who]
    response = httpx.post(
        f"{base_url}/v1/patients/P1/enrolment-codes", json={"ttl_s": 3600}, headers=headers
    )
    assert response.status_code == status, response.text
    if status == 201:
        code = response.json()
        assert code["patient_ids"] == ["P1"]
        assert len(code["code"]) >= 8


def test_openapi_is_published_and_every_route_but_metadata_needs_a_token(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    paths = document["paths"]
    assert "/v1/alerts/{alert_id}" in paths
    assert "/fhir/Observation" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path == "/fhir/metadata":
                assert "security" not in operation
                continue
            assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
