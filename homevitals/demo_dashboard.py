"""The demo's other care teams and its dashboard (`homevitals demo --keep-running`).

The patient is followed by three teams, as after a hospital discharge: the hospital clinic
(registered by the demo with its webhook endpoint), a community health centre that sees every
kind of data, and a family practice the patient has not granted blood pressure, so its
dashboard shows that section as not shared, and the refusal is in the audit trail.

`serve_dashboard` runs the care-team API (dashboard included) in this process on a free
loopback port, over the demo's record store, in development mode with a sign-in code made for
this run, until it is cancelled (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from api.app import create_app
from api.settings import load_settings
from careteam import consent_store, registry
from careteam.audit import Actor
from careteam.consent import GrantRequest
from homevitals.demo_procs import free_port
from ingest.store import make_engine

DEMO_ACTOR = Actor("operator", "demo", source="cli")
PRACTICE_KINDS = ("glucose", "alerts", "devices")  # no blood pressure: the patient said so


@dataclass(frozen=True)
class DashboardUser:
    """A member who can sign in to the dashboard, and what their team may see."""

    member_id: str
    name: str
    team: str
    kinds: tuple[str, ...]


def register_other_teams(db_url: str, patient_id: str) -> None:
    """A community health centre (every kind) and a family practice (no blood pressure)
    following `patient_id`, each with one member and the patient's consent grant.

    Raises:
        CareteamError: a record write was refused (the field is named).
    """
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            for institution, kind, team_name, member, role, kinds in (
                ("Riverside Community Health Centre", "community_health_centre",
                 "Chronic disease team", "Nurse Huang", "nurse",
                 ("glucose", "blood_pressure", "alerts", "devices")),
                ("Dr Zhou's family practice", "family_practice", "Family practice",
                 "Dr Zhou", "physician", PRACTICE_KINDS),
            ):  # fmt: skip
                institution_id = registry.add_institution(conn, institution, kind, now)
                team = registry.add_team(conn, institution_id, team_name, now)
                registry.add_member(conn, team, member, role=role, tier=1, at=now)
                registry.assign_patient(conn, team, patient_id, now, tier=1)
                request = GrantRequest(patient_id, "team", team, kinds, now, None, "in_person")
                consent_store.grant(conn, request, actor=DEMO_ACTOR, at=now)
    finally:
        engine.dispose()


def dashboard_users(db_url: str, patient_id: str) -> list[DashboardUser]:
    """The active members of every team following `patient_id`, with the kinds the patient's
    current grants let their team see."""
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    users: list[DashboardUser] = []
    try:
        with engine.connect() as conn:
            grants = [
                g for g in consent_store.grants_for_patient(conn, patient_id) if g.current(now)
            ]
            for following in registry.teams_following(conn, patient_id):
                team = registry.get_team(conn, following.team_id)
                institution = registry.get_institution(conn, team.institution_id)
                kinds = sorted(
                    {k for g in grants if g.grantee_id == team.team_id for k in g.data_kinds}
                )
                users.extend(
                    DashboardUser(
                        m.member_id,
                        m.display_name,
                        f"{team.name}, {institution.name}",
                        tuple(kinds),
                    )
                    for m in registry.team_members(conn, team.team_id)
                    if m.active
                )
    finally:
        engine.dispose()
    return users


async def serve_dashboard(
    db_url: str, workdir: Path, users: list[DashboardUser], say: Callable[[str], object]
) -> None:
    """Serve the API and dashboard until cancelled; print where and how to sign in.

    Raises:
        ApiConfigError: the settings were refused.
    """
    code = secrets.token_urlsafe(12)
    settings = load_settings(
        signing_key=secrets.token_urlsafe(48), environment="development", dashboard_dev_code=code
    )
    engine = make_engine(db_url)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    url = f"http://127.0.0.1:{port}/dashboard/"
    lines = [
        f"dashboard: {url}",
        f"  development sign-in code: {code}",
        *(
            f"  member id {u.member_id}: {u.name} ({u.team}; sees {', '.join(u.kinds)})"
            for u in users
        ),
        "  (Ctrl-C stops it; the record store stays in the demo directory)",
    ]
    (workdir / "dashboard-login.txt").write_text("\n".join(lines) + "\n")
    task = asyncio.create_task(server.serve(), name="dashboard")
    while not server.started:
        if task.done():
            await task  # raises what stopped it
            return
        await asyncio.sleep(0.05)
    for line in lines:
        say(line)
    try:
        await task
    finally:
        server.should_exit = True
        engine.dispose()
