"""Scope x consent x resource: exact status codes, and every request touching patient data in
the audit trail (allowed and denied), against the app under real uvicorn and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from api.fhir_models import validated
from api.tokens import Actor
from careteam.tables import audit_log
from tests.api.record import Seeded
from tests.api.support import token

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Who:
    name: str
    actor: Actor | None
    subject: Callable[[Seeded], str]
    scope: str


WHO = {
    w.name: w
    for w in (
        Who("member_a", Actor.MEMBER, lambda s: s.member_a, "user/*.read"),
        Who("member_a_obs", Actor.MEMBER, lambda s: s.member_a, "user/Observation.read"),
        Who("member_b", Actor.MEMBER, lambda s: s.member_b, "user/*.read"),
        Who("inactive", Actor.MEMBER, lambda s: s.inactive_a, "user/*.read"),
        Who("p1", Actor.PATIENT, lambda s: "P1", "patient/*.read"),
        Who("p2", Actor.PATIENT, lambda s: "P2", "patient/*.read"),
        Who("p1_flag", Actor.PATIENT, lambda s: "P1", "patient/Flag.read"),
        Who("system", Actor.SYSTEM, lambda s: "ehr-1", "system/*.read"),
        Who("anonymous", None, lambda s: "", ""),
    )
}

# (request, who, status, audited outcome for P1: "success", "denied" or None for no entry)
BP = "http://loinc.org|85354-9"
MATRIX: list[tuple[str, str, int, str | None]] = [
    ("/fhir/Observation?patient=P1", "member_a", 200, "success"),
    ("/fhir/Observation?patient=P1", "member_a_obs", 200, "success"),
    ("/fhir/Observation?patient=P1", "member_b", 200, "success"),  # glucose only
    (f"/fhir/Observation?patient=P1&code={BP}", "member_b", 403, "denied"),
    (f"/fhir/Observation?patient=P1&code={BP}", "member_a", 200, "success"),
    ("/fhir/Observation?patient=P1", "inactive", 403, None),
    ("/fhir/Observation?patient=P1", "p1", 200, "success"),
    ("/fhir/Observation?patient=P1", "p2", 403, "denied"),
    ("/fhir/Observation?patient=P1", "p1_flag", 403, "denied"),
    ("/fhir/Observation?patient=P1", "system", 403, "denied"),
    ("/fhir/Observation?patient=P1", "anonymous", 401, None),
    ("/fhir/Observation/{bp}", "member_a", 200, "success"),
    ("/fhir/Observation/{bp}-hr", "member_a", 200, "success"),
    ("/fhir/Observation/{bp}", "member_b", 403, "denied"),
    ("/fhir/Observation/{glucose}", "member_b", 200, "success"),
    ("/fhir/Observation/{bp}", "p1", 200, "success"),
    ("/fhir/Observation/{bp}", "p2", 403, "denied"),
    ("/fhir/Observation/{bp}", "system", 403, "denied"),
    ("/fhir/Observation/{bp}", "anonymous", 401, None),
    ("/fhir/Flag?patient=P1", "member_a", 200, "success"),
    ("/fhir/Flag?patient=P1", "member_a_obs", 403, "denied"),
    ("/fhir/Flag?patient=P1", "member_b", 403, "denied"),
    ("/fhir/Flag?patient=P1&status=active", "p1_flag", 200, "success"),
    ("/fhir/Flag/{alert}", "member_a", 200, "success"),
    ("/fhir/Flag/{alert}", "member_b", 403, "denied"),
    ("/fhir/Flag/{alert}", "p2", 403, "denied"),
    ("/fhir/Device?patient=P1", "member_a", 200, "success"),
    ("/fhir/Device?patient=P1", "member_b", 403, "denied"),
    ("/fhir/Device?patient=P1", "p1", 200, "success"),
    ("/fhir/Patient/P1", "member_a", 200, "success"),
    ("/fhir/Patient/P1", "member_b", 200, "success"),
    ("/fhir/Patient/P1", "member_a_obs", 403, "denied"),
    ("/fhir/Patient/P1", "p2", 403, "denied"),
    ("/fhir/Patient/P1", "system", 403, "denied"),
    ("/fhir/Consent?patient=P1", "member_a", 200, "success"),
    ("/fhir/Consent?patient=P1", "p1", 200, "success"),
    ("/fhir/Consent?patient=P1", "p2", 403, "denied"),
    ("/fhir/AuditEvent?patient=P1", "p1", 200, "success"),
    ("/fhir/AuditEvent?patient=P1", "p2", 403, "denied"),
    ("/fhir/AuditEvent?patient=P1", "system", 403, "denied"),
    ("/fhir/Practitioner", "p1", 200, None),
    ("/fhir/CareTeam", "system", 200, None),
    ("/fhir/Practitioner", "anonymous", 401, None),
]


def _audit_after(engine: sa.Engine, seq: int) -> list[sa.Row[tuple[object, ...]]]:
    c = audit_log.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log).where(c.seq > seq).order_by(c.seq)))


def _head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(audit_log.c.seq), 0))).scalar_one()
        )


@pytest.mark.parametrize(
    ("path", "who", "status", "audited"), MATRIX, ids=[f"{w}:{p}" for p, w, _, _ in MATRIX]
)
def test_scope_consent_resource_matrix(  # noqa: PLR0917 (parametrized)
    base_url: str,
    record_engine: sa.Engine,
    seeded: Seeded,
    path: str,
    who: str,
    status: int,
    audited: str | None,
) -> None:
    caller = WHO[who]
    url = base_url + path.format(
        bp=seeded.bp_reading, glucose=seeded.glucose_reading, alert=seeded.alert_p1
    )
    headers = {}
    if caller.actor is not None:
        headers["Authorization"] = "Bearer " + token(
            caller.actor, caller.subject(seeded), caller.scope
        )
    before = _head(record_engine)
    response = httpx.get(url, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = validated(response.json())
    if status == 200:
        assert body["resourceType"] != "OperationOutcome"
    else:
        assert body["resourceType"] == "OperationOutcome"
        assert "Traceback" not in response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    entries = _audit_after(record_engine, before)
    mine = [e for e in entries if e.patient_id == "P1" and e.actor_id == caller.subject(seeded)]
    if audited is None:
        assert not [e for e in mine if e.action == "data.read"], entries
    else:
        assert mine, f"no audit entry for {who} {path}"
        assert audited in {e.outcome for e in mine}
        if audited == "denied":
            assert {e.outcome for e in mine} == {"denied"}
        assert all(e.source == "127.0.0.1" for e in mine)
        assert all(str(e.purpose).startswith("token:") for e in mine)


def _get(base_url: str, path: str, bearer: str) -> httpx.Response:
    return httpx.get(base_url + path, headers={"Authorization": f"Bearer {bearer}"})


def test_member_b_sees_only_the_granted_kind(base_url: str, seeded: Seeded) -> None:
    bearer = token(Actor.MEMBER, seeded.member_b, "user/*.read")
    ids: set[str] = set()
    url: str | None = base_url + "/fhir/Observation?patient=P1"
    while url is not None:
        bundle = validated(httpx.get(url, headers={"Authorization": f"Bearer {bearer}"}).json())
        ids |= {e["resource"]["id"] for e in bundle.get("entry", [])}
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert ids == {seeded.glucose_reading, seeded.hi_reading}


def test_consent_denial_says_why(base_url: str, seeded: Seeded) -> None:
    response = _get(
        base_url,
        f"/fhir/Observation?patient=P1&code={BP}",
        token(Actor.MEMBER, seeded.member_b, "user/*.read"),
    )
    assert response.status_code == 403
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert "consent" in issue["diagnostics"]
    assert "does not cover" in issue["diagnostics"]


def test_a_patient_sees_their_own_audit_trail(base_url: str, seeded: Seeded) -> None:
    # member A reads P1's data, then P1 finds that read among their AuditEvents
    _get(
        base_url,
        f"/fhir/Observation/{seeded.bp_reading}",
        token(Actor.MEMBER, seeded.member_a, "user/*.read"),
    )
    bundle = validated(
        _get(
            base_url, "/fhir/AuditEvent?_count=50", token(Actor.PATIENT, "P1", "patient/*.read")
        ).json()
    )
    agents = {
        e["resource"]["agent"][0]["who"].get("reference")
        for e in bundle["entry"]
        if e["resource"]["subtype"][0]["code"] == "data.read"
    }
    assert f"Practitioner/{seeded.member_a}" in agents
    for entry in bundle["entry"]:
        patients = [
            x["what"].get("reference")
            for x in entry["resource"].get("entity", [])
            if "reference" in x["what"]
        ]
        assert patients in ([], ["Patient/P1"])
