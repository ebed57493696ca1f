"""The app's public edges under real uvicorn: metadata without a token, 401s, errors as
OperationOutcomes, the body limit; `homevitals token issue` as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from api.fhir_models import validated
from api.tokens import Actor, TokenKey, verify
from careteam import registry
from ingest.store import make_engine
from tests.api.support import SIGNING_KEY, homevitals, migrate_all, serve, settings, token

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    migrate_all(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def test_metadata_needs_no_token_and_validates(engine: sa.Engine) -> None:
    with serve(engine) as base:
        response = httpx.get(f"{base}/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    statement = validated(response.json())
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["implementation"]["url"] == f"{base}/fhir"


def test_errors_are_operation_outcomes_without_detail(engine: sa.Engine) -> None:
    with serve(engine) as base:
        missing = httpx.get(f"{base}/fhir/Nothing/here")
        too_big = httpx.post(f"{base}/fhir/metadata", content=b"x" * 70_000)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == FHIR_JSON
    assert validated(missing.json())["issue"][0]["code"] == "not-found"
    assert too_big.status_code == 413
    assert validated(too_big.json())["resourceType"] == "OperationOutcome"


def test_token_issue_prints_one_verifiable_token(engine: sa.Engine, pg_url: str) -> None:
    with engine.begin() as conn:
        now = datetime.now(UTC)
        institution = registry.add_institution(conn, "City Hospital", "hospital_clinic", now)
        team = registry.add_team(conn, institution, "Diabetes clinic", now)
        member = registry.add_member(conn, team, "Dr Chen", role="physician", tier=0, at=now)
    done = homevitals(
        "token",
        "issue",
        "--db",
        pg_url,
        "--member",
        member,
        "--scope",
        "user/Observation.read user/Flag.write",
        "--ttl",
        "600",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    key = TokenKey(SIGNING_KEY.encode(), "homevitals", "homevitals-api")
    principal = verify(lines[0], key, now=datetime.now(UTC))
    assert (principal.actor, principal.subject) == (Actor.MEMBER, member)
    assert {s.resource for s in principal.scopes} == {"Observation", "Flag"}

    unknown = homevitals(
        "token", "issue", "--db", pg_url, "--member", "nobody", "--scope", "user/*.read"
    )
    assert unknown.returncode == 1
    assert "no active care-team member" in unknown.stderr
    assert unknown.stdout == ""
    both = homevitals(
        "token",
        "issue",
        "--db",
        pg_url,
        "--member",
        member,
        "--system",
        "c",
        "--scope",
        "user/*.read",
    )
    assert both.returncode == 2
    wrong_context = homevitals(
        "token", "issue", "--db", pg_url, "--member", member, "--scope", "patient/*.read"
    )
    assert wrong_context.returncode == 1
    assert "user/ scopes only" in wrong_context.stderr
    placeholder = homevitals(
        "token",
        "issue",
        "--db",
        pg_url,
        "--system",
        "ehr-1",
        "--scope",
        "system/*.read",
        env={"HV_API_SIGNING_KEY": "changeme-changeme-changeme-changeme"},
    )
    assert placeholder.returncode == 2
    assert "HV_API_SIGNING_KEY" in placeholder.stderr


def test_api_and_token_commands_answer_help_without_side_effects() -> None:
    for args in (("api", "run", "--help"), ("token", "issue", "--help")):
        done = homevitals(*args, env={"HV_API_SIGNING_KEY": ""})
        assert done.returncode == 0, done.stderr
        assert "--db" in done.stdout


def test_settings_helper_matches_the_key() -> None:
    assert settings().token_key().secret == SIGNING_KEY.encode()
    assert token(Actor.SYSTEM, "ehr-1", "system/*.read").count(".") == 2
