"""`homevitals patient|consent|audit ...`: the care-team record from a terminal.

`homevitals consent withdraw` is added by the composition root (`homevitals/consent_cli.py`),
because a withdrawal also cancels the webhooks still queued for the grantee (alerts' delivery).

The database URL comes from ``--db`` or ``HV_CARETEAM_DB_URL``. Every change is audited with
the operator named by ``--by`` (default: the login name) and source ``cli``. Bad input exits 2
naming the field; nothing is written then.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import sqlalchemy as sa
import typer

from careteam import audit_store, consent_store, enrolment_store, record
from careteam.audit import Actor, Anchor, describe
from careteam.consent import GrantRequest
from careteam.db import make_engine
from careteam.errors import CareteamError, InvalidFieldError
from careteam.migrations import migrate as run_migrations
from careteam.registry import get_member, get_team

T = TypeVar("T")
Db = Annotated[
    str, typer.Option("--db", envvar="HV_CARETEAM_DB_URL", help="SQLAlchemy database URL.")
]
By = Annotated[str | None, typer.Option("--by", help="Who records this (default: login name).")]

patient_app = typer.Typer(help="Patients in the care-team record.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent grants (FHIR Consent).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


def now() -> datetime:
    """The wall clock in UTC (the CLI is a composition root)."""
    return datetime.now(UTC)


def actor(by: str | None) -> Actor:
    """The operator running the command, as an audit actor."""
    return Actor("operator", (by or getpass.getuser())[:64], source="cli")


def run(db: str, action: str, fn: Callable[[sa.Connection], T]) -> T:
    """Run `fn` in one transaction; a record error exits 2 naming what was wrong."""
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            return fn(conn)
    except CareteamError as exc:
        typer.echo(f"{action}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        engine.dispose()


def _time(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidFieldError(field, f"{text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise InvalidFieldError(field, "give a UTC offset (2026-12-01T00:00:00+08:00)")
    return value


@patient_app.command("migrate")
def migrate(db: Db) -> None:
    """Create or upgrade the care-team record's tables."""
    run_migrations(db)
    typer.echo("migrated")


@patient_app.command("add")
def patient_add(
    patient_id: str,
    name: Annotated[str, typer.Option(help="Full name, as the care team uses it.")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Asia/Shanghai.")],
    db: Db,
    *,
    condition: Annotated[
        list[str] | None, typer.Option("--condition", help="Condition code; repeat for several.")
    ] = None,
    language: Annotated[str, typer.Option(help="en or zh (the patient's audit view).")] = "en",
    short_name: Annotated[
        str | None, typer.Option(help="What the home hub shows (default: initials).")
    ] = None,
    by: By = None,
) -> None:
    """Register a patient; prints the record as JSON."""
    profile = run(
        db,
        "patient add",
        lambda c: record.add_patient(
            c,
            patient_id=patient_id,
            display_name=name,
            timezone=timezone,
            conditions=condition or (),
            language=language,
            short_name=short_name,
            actor=actor(by),
            at=now(),
        ),
    )
    typer.echo(
        json.dumps(
            {
                "patient_id": profile.patient_id,
                "short_name": profile.short_name,
                "timezone": profile.timezone,
                "conditions": list(profile.conditions),
            }
        )
    )


@patient_app.command("list")
def patient_list(db: Db) -> None:
    """List patients: id, short name, time zone, conditions."""
    for p in run(db, "patient list", record.list_patients):
        typer.echo(f"{p.patient_id}\t{p.short_name}\t{p.timezone}\t{' '.join(p.conditions)}")


@patient_app.command("enrol-code")
def enrol_code(
    patient_id: Annotated[list[str], typer.Argument(help="One or two patients of one home.")],
    db: Db,
    ttl_h: Annotated[float, typer.Option(help="Hours the code stays valid.")] = 24.0,
    gateway: Annotated[
        str | None, typer.Option(help="Add the patients to this enrolled hub instead.")
    ] = None,
    by: By = None,
) -> None:
    """Make a single-use hub enrolment code; prints it (shown once) and when it expires."""
    issued = run(
        db,
        "enrol-code",
        lambda c: enrolment_store.create_code(
            c,
            patient_id,
            actor=actor(by),
            at=now(),
            ttl=timedelta(hours=ttl_h),
            gateway_id=gateway,
        ),
    )
    typer.echo(json.dumps({"code": issued.code, "expires_at": issued.expires_at.isoformat()}))


@consent_app.command("grant")
def consent_grant(
    patient_id: str,
    db: Db,
    kind: Annotated[list[str], typer.Option("--kind", help="Data kind; repeat for several.")],
    method: Annotated[str, typer.Option(help="in_person, paper or app.")],
    *,
    team: Annotated[str | None, typer.Option(help="Grantee: one care team.")] = None,
    institution: Annotated[str | None, typer.Option(help="Grantee: a whole institution.")] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601 start (default now).")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 end (default open).")] = None,
    by: By = None,
) -> None:
    """Record a consent grant; prints its id."""
    if (team is None) == (institution is None):
        typer.echo("consent grant: give exactly one of --team and --institution", err=True)
        raise typer.Exit(code=2)
    at = now()

    def _grant(conn: sa.Connection) -> str:
        request = GrantRequest(
            patient_id=patient_id,
            grantee_kind="team" if team is not None else "institution",
            grantee_id=team or institution or "",
            data_kinds=tuple(kind),
            period_start=_time("period_start", start) or at,
            period_end=_time("period_end", end),
            method=method,
        )
        return consent_store.grant(conn, request, actor=actor(by), at=at).consent_id

    typer.echo(run(db, "consent grant", _grant))


@consent_app.command("list")
def consent_list(patient_id: str, db: Db) -> None:
    """A patient's grants: id, status, grantee, kinds, period, method."""
    for g in run(db, "consent list", lambda c: consent_store.grants_for_patient(c, patient_id)):
        end = g.period_end.isoformat() if g.period_end else "open"
        typer.echo(
            f"{g.consent_id}\t{g.status}\t{g.grantee_kind}/{g.grantee_id}\t"
            f"{','.join(g.data_kinds)}\t{g.period_start.isoformat()}..{end}\t{g.method}"
        )


def _read_anchor(path: Path | None) -> Anchor | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text())
        return Anchor(int(doc["seq"]), str(doc["hash"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        typer.echo(f"audit verify: --anchor {path}: not an anchor file ({exc})", err=True)
        raise typer.Exit(code=2) from None


@audit_app.command("verify")
def audit_verify(
    db: Db,
    anchor: Annotated[
        Path | None, typer.Option(help="An anchor file from `audit anchor`: detects a cut tail.")
    ] = None,
) -> None:
    """Check the hash chain: exit 0 when intact, 1 naming the first bad entry."""
    expected = _read_anchor(anchor)
    result = run(db, "audit verify", lambda c: audit_store.verify(c, expected))
    if result.ok:
        head = f", head {result.head.seq} {result.head.hash}" if result.head else ""
        typer.echo(f"audit trail intact: {result.entries} entries{head}")
        return
    typer.echo(f"audit trail BROKEN at entry {result.first_bad_seq}: {result.problem}", err=True)
    raise typer.Exit(code=1)


@audit_app.command("anchor")
def audit_anchor(db: Db) -> None:
    """Print the chain's head as JSON (keep it outside the database; `verify --anchor`)."""
    head = run(db, "audit anchor", audit_store.head)
    doc = {
        "seq": head.seq if head else 0,
        "hash": head.hash if head else "",
        "at": now().isoformat(),
    }
    typer.echo(json.dumps(doc))


def _actor_name(conn: sa.Connection, kind: str, actor_id: str, language: str) -> str:
    zh = language == "zh"
    try:
        if kind == "member":
            member = get_member(conn, actor_id)
            team = get_team(conn, member.team_id)
            return (
                f"{member.display_name}（{team.name}）"
                if zh
                else f"{member.display_name} ({team.name})"
            )
        if kind == "team":
            return get_team(conn, actor_id).name
    except CareteamError:
        pass
    words = {
        "gateway": ("Your home hub", "您的家庭网关"),
        "system": ("homevitals", "homevitals"),
        "operator": (f"Administrator {actor_id}", f"管理员 {actor_id}"),
        "patient": ("You", "您"),
    }
    pair = words.get(kind, (actor_id, actor_id))
    return pair[1] if zh else pair[0]


@audit_app.command("show")
def audit_show(
    db: Db,
    patient: Annotated[str, typer.Option(help="The patient whose trail to show.")],
    language: Annotated[str | None, typer.Option(help="en or zh (default: the patient's).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or fhir (AuditEvent JSON).")] = "text",
) -> None:
    """Who saw what, when: a patient's own view of the audit trail."""
    from careteam.audit import to_fhir  # noqa: PLC0415

    def _show(conn: sa.Connection) -> list[str]:
        profile = record.get_patient(conn, patient)
        lang = language or profile.language
        zone = profile.timezone
        from zoneinfo import ZoneInfo  # noqa: PLC0415

        lines = []
        for entry in audit_store.iter_entries(conn, patient_id=patient):
            if fmt == "fhir":
                lines.append(json.dumps(to_fhir(entry), ensure_ascii=False))
                continue
            local = entry.recorded_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
            name = _actor_name(conn, entry.actor_kind, entry.actor_id, lang)
            lines.append(f"{local}  {describe(entry, lang, name)}")
        return lines

    for line in run(db, "audit show", _show):
        typer.echo(line)
    sys.stdout.flush()
