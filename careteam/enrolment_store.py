"""Hub enrolment in the record (adapter): codes, redemption, revocation, and ingest's look-up.

`create_code` makes a single-use code for one or more patients (a household hub may serve two);
`redeem` turns a code typed on a hub into the hub's identity: a gateway id, which is also its
broker user name under the shipped per-gateway ACL, and a fresh broker password that the
`BrokerAccounts` port installs on the broker before the transaction commits. A code made for an
enrolled hub (`gateway_id` given) adds its patients to that hub instead. `revoke_gateway` ends a
hub's enrolment and removes its broker account (which disconnects it). `enrolled_patients` is
what ingest checks every reading against.

Unknown, expired and used codes get the same answer (``invalid_code``), and failed attempts per
source and in all are limited (`careteam.enrolment.AttemptPolicy`). Every outcome is audited.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from careteam import audit_store, enrolment
from careteam.audit import Actor, AuditRecord
from careteam.errors import InvalidFieldError, NotFoundError
from careteam.record import require_patients
from careteam.tables import (
    enrolment_attempts,
    enrolment_codes,
    gateway_patients,
    gateways,
    patient_records,
)

RandomBytes = Callable[[int], bytes]


class BrokerAccounts(Protocol):
    """Where a hub's broker credentials are installed (`careteam.broker.MosquittoPasswordFile`)."""

    def add(self, username: str, password: str) -> None:
        """Install (or replace) an account; effective when this returns."""

    def remove(self, username: str) -> None:
        """Remove an account and disconnect its sessions; effective when this returns."""


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A new enrolment code: show `code` once (only its hash is stored)."""

    code_id: str
    code: str
    patient_ids: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HubPatient:
    """A patient as the hub shows them: id and short name (initials), never more."""

    patient_id: str
    short_name: str


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a hub gets for a good code. `mqtt_password` is None when the hub was already
    enrolled (the code added patients to it)."""

    gateway_id: str
    mqtt_username: str
    mqtt_password: str | None
    patients: tuple[HubPatient, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused redemption: ``invalid_code`` or ``rate_limited`` (with `retry_after`)."""

    reason: str
    retry_after: timedelta | None = None


def new_gateway_id(random: RandomBytes = secrets.token_bytes) -> str:
    """A gateway id usable as a broker user name (no ``/``, ``+``, ``#``): ``gw-`` + 12 hex."""
    return "gw-" + random(6).hex()


def create_code(
    conn: sa.Connection,
    patient_ids: Sequence[str],
    *,
    actor: Actor,
    at: datetime,
    ttl: timedelta = enrolment.DEFAULT_TTL,
    gateway_id: str | None = None,
    random: RandomBytes = secrets.token_bytes,
) -> IssuedCode:
    """Make a single-use enrolment code for `patient_ids` (audited per patient).

    Raises:
        InvalidFieldError: no patient, more than 4, or a bad ``ttl``.
        NotFoundError: an unknown or inactive ``patient_id``; an unknown or revoked
            ``gateway_id``.
    """
    ids = tuple(dict.fromkeys(patient_ids))
    if not 1 <= len(ids) <= 4:
        raise InvalidFieldError("patient_ids", "name 1 to 4 patients (one household hub)")
    require_patients(conn, ids)
    enrolment.check_ttl(ttl)
    if gateway_id is not None:
        g = gateways.c
        row = conn.execute(
            sa.select(g.gateway_id).where(g.gateway_id == gateway_id, g.revoked_at.is_(None))
        ).first()
        if row is None:
            raise NotFoundError("gateway_id", gateway_id)
    code = enrolment.format_code(random(enrolment.CODE_BYTES))
    code_id = str(uuid.uuid4())
    conn.execute(
        enrolment_codes.insert().values(
            id=code_id,
            code_sha256=enrolment.code_digest(code),
            patient_ids=" ".join(ids),
            gateway_id=gateway_id,
            created_at=at,
            created_by=actor.id,
            expires_at=at + ttl,
        )
    )
    for pid in ids:
        audit_store.append(
            conn,
            audit_store.record(
                actor,
                "enrolment_code.create",
                patient_id=pid,
                entity_kind="enrolment_code",
                entity_id=code_id,
            ),
            at,
        )
    return IssuedCode(code_id, code, ids, at + ttl)


def _failures(conn: sa.Connection, since: datetime, source: str | None) -> int:
    a = enrolment_attempts.c
    stmt = sa.select(sa.func.count()).where(a.at >= since, a.ok.is_(False))
    if source is not None:
        stmt = stmt.where(a.source == source)
    return int(conn.execute(stmt).scalar_one())


def _refuse(
    conn: sa.Connection, source: str, at: datetime, reason: str, wait: timedelta | None = None
) -> Refusal:
    conn.execute(enrolment_attempts.insert().values(source=source[:64], at=at, ok=False))
    audit_store.append(
        conn,
        AuditRecord(
            actor_kind="gateway",
            actor_id="unknown",
            action="gateway.enrol_refused",
            outcome="denied",
            source=source[:200],
            detail={"reason": reason},
        ),
        at,
    )
    return Refusal(reason, wait)


def hub_patients(conn: sa.Connection, gateway_id: str) -> tuple[HubPatient, ...]:
    """The patients an enrolled hub serves (id and short name), by short name."""
    gp, p = gateway_patients.c, patient_records.c
    rows = conn.execute(
        sa.select(p.patient_id, p.short_name)
        .join(gateway_patients, gp.patient_id == p.patient_id)
        .where(gp.gateway_id == gateway_id, gp.revoked_at.is_(None), p.active.is_(True))
        .order_by(p.short_name, p.patient_id)
    )
    return tuple(HubPatient(r.patient_id, r.short_name) for r in rows)


def redeem(
    conn: sa.Connection,
    typed_code: str,
    *,
    source: str,
    at: datetime,
    accounts: BrokerAccounts,
    policy: enrolment.AttemptPolicy = enrolment.AttemptPolicy(),  # noqa: B008
    random: RandomBytes = secrets.token_bytes,
    hub_gateway_id: str | None = None,
) -> Enrolment | Refusal:
    """Redeem a code typed on a hub; commit the caller's transaction whatever the result.

    A hub that is enrolled already presents its `hub_gateway_id`: only a code made for that
    hub is accepted then (it adds the code's patients), and a code made for a hub is accepted
    only from that hub.

    A refusal is returned (not raised) so that the failed attempt and its audit entry are
    committed too, which the attempt limit counts. Broker credentials are installed before the
    caller commits: if the commit fails, the account is an orphan whose password nobody knows.

    Raises:
        careteam.errors.BrokerCredentialsError: the broker account could not be installed.
    """
    since = at - policy.window
    wait = enrolment.retry_after(
        _failures(conn, since, source), _failures(conn, since, None), policy
    )
    if wait is not None:
        return Refusal("rate_limited", wait)
    try:
        digest = enrolment.code_digest(typed_code)
    except InvalidFieldError:
        return _refuse(conn, source, at, "invalid_code")
    c = enrolment_codes.c
    code = conn.execute(
        sa.select(enrolment_codes).where(c.code_sha256 == digest).with_for_update()
    ).first()
    if code is None or code.used_at is not None or at >= code.expires_at:
        return _refuse(conn, source, at, "invalid_code")
    if code.gateway_id != hub_gateway_id:  # a new hub's code on an enrolled hub, or vice versa
        return _refuse(conn, source, at, "invalid_code")
    if code.gateway_id is not None:
        g = gateways.c
        live = conn.execute(
            sa.select(g.gateway_id).where(g.gateway_id == code.gateway_id, g.revoked_at.is_(None))
        ).first()
        if live is None:
            return _refuse(conn, source, at, "invalid_code")
    patient_ids = code.patient_ids.split()
    try:
        require_patients(conn, patient_ids)
    except NotFoundError:
        return _refuse(conn, source, at, "invalid_code")
    password: str | None = None
    if code.gateway_id is None:
        gateway_id = new_gateway_id(random)
        password = secrets.token_urlsafe(24)
        conn.execute(
            gateways.insert().values(
                gateway_id=gateway_id, mqtt_username=gateway_id, enrolled_at=at
            )
        )
    else:
        gateway_id = code.gateway_id
    for pid in patient_ids:
        _link(conn, gateway_id, pid, at)
    conn.execute(
        sa.update(enrolment_codes)
        .where(c.id == code.id)
        .values(used_at=at, used_by_gateway=gateway_id)
    )
    conn.execute(enrolment_attempts.insert().values(source=source[:64], at=at, ok=True))
    for pid in patient_ids:
        audit_store.append(
            conn,
            AuditRecord(
                actor_kind="gateway",
                actor_id=gateway_id,
                action="gateway.enrol",
                patient_id=pid,
                entity_kind="gateway",
                entity_id=gateway_id,
                source=source[:200],
                detail={"code_id": code.id},
            ),
            at,
        )
    if password is not None:
        accounts.add(gateway_id, password)
    return Enrolment(gateway_id, gateway_id, password, hub_patients(conn, gateway_id))


def enrol_gateway(
    conn: sa.Connection,
    gateway_id: str,
    patient_ids: Sequence[str],
    *,
    actor: Actor,
    at: datetime,
) -> tuple[HubPatient, ...]:
    """Enrol a hub whose identity the operator already knows (the CN of its client certificate
    on the mTLS listener: no password involved), or add patients to an enrolled hub.

    Raises:
        InvalidFieldError: ``gateway_id`` is not usable as a broker user name, or no patient.
        NotFoundError: an unknown or inactive ``patient_id``; ``gateway_id`` was revoked (a
            revoked identity is never reused: enrol the hub under a new one).
    """
    from careteam.broker import check_username  # noqa: PLC0415 (a pure check)

    try:
        check_username(gateway_id)
    except InvalidFieldError as exc:
        raise InvalidFieldError("gateway_id", exc.reason) from exc
    ids = tuple(dict.fromkeys(patient_ids))
    if not ids:
        raise InvalidFieldError("patient_ids", "name at least one patient")
    require_patients(conn, ids)
    g = gateways.c
    row = conn.execute(sa.select(gateways).where(g.gateway_id == gateway_id)).first()
    if row is not None and row.revoked_at is not None:
        raise NotFoundError("gateway_id", gateway_id)
    if row is None:
        conn.execute(
            gateways.insert().values(
                gateway_id=gateway_id, mqtt_username=gateway_id, enrolled_at=at
            )
        )
    for pid in ids:
        _link(conn, gateway_id, pid, at)
        audit_store.append(
            conn,
            audit_store.record(
                actor, "gateway.enrol", patient_id=pid, entity_kind="gateway", entity_id=gateway_id
            ),
            at,
        )
    return hub_patients(conn, gateway_id)


def _link(conn: sa.Connection, gateway_id: str, patient_id: str, at: datetime) -> None:
    gp = gateway_patients.c
    found = conn.execute(
        sa.select(gp.gateway_id).where(gp.gateway_id == gateway_id, gp.patient_id == patient_id)
    ).first()
    if found is None:
        conn.execute(
            gateway_patients.insert().values(
                gateway_id=gateway_id, patient_id=patient_id, enrolled_at=at
            )
        )
    else:
        conn.execute(
            sa.update(gateway_patients)
            .where(gp.gateway_id == gateway_id, gp.patient_id == patient_id)
            .values(enrolled_at=at, revoked_at=None)
        )


def revoke_gateway(
    conn: sa.Connection,
    gateway_id: str,
    *,
    actor: Actor,
    at: datetime,
    accounts: BrokerAccounts | None,
) -> None:
    """Unenrol a hub: its readings are refused from now on and its broker account is removed
    (`accounts` None: a certificate hub, whose certificate the operator revokes at the CA).

    Raises:
        NotFoundError: unknown or already revoked ``gateway_id``.
        careteam.errors.BrokerCredentialsError: the broker account could not be removed (the
            revocation rolls back with the caller's transaction).
    """
    g, gp = gateways.c, gateway_patients.c
    row = conn.execute(
        sa.select(gateways).where(g.gateway_id == gateway_id, g.revoked_at.is_(None))
    ).first()
    if row is None:
        raise NotFoundError("gateway_id", gateway_id)
    served = [p.patient_id for p in hub_patients(conn, gateway_id)]
    conn.execute(
        sa.update(gateways)
        .where(g.gateway_id == gateway_id)
        .values(revoked_at=at, revoked_by=actor.id)
    )
    conn.execute(
        sa.update(gateway_patients)
        .where(gp.gateway_id == gateway_id, gp.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    targets: list[str | None] = list(served) or [None]
    for pid in targets:
        audit_store.append(
            conn,
            audit_store.record(
                actor,
                "gateway.revoke",
                patient_id=pid,
                entity_kind="gateway",
                entity_id=gateway_id,
            ),
            at,
        )
    if accounts is not None:
        accounts.remove(row.mqtt_username)


def patient_gateways(conn: sa.Connection, patient_id: str) -> tuple[str, ...]:
    """The enrolled (not revoked) hubs that serve `patient_id`, by gateway id."""
    g, gp = gateways.c, gateway_patients.c
    rows = conn.execute(
        sa.select(gp.gateway_id)
        .join(gateways, g.gateway_id == gp.gateway_id)
        .where(gp.patient_id == patient_id, gp.revoked_at.is_(None), g.revoked_at.is_(None))
        .order_by(gp.gateway_id)
    )
    return tuple(r.gateway_id for r in rows)


def enrolled_patients(conn: sa.Connection, gateway_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """Per enrolled (not revoked) gateway among `gateway_ids`, the patients it may report.

    Gateways that are unknown or revoked are absent. One indexed query (ingest calls it once
    per batch with the batch's gateways).
    """
    ids = list(set(gateway_ids))
    if not ids:
        return {}
    g, gp = gateways.c, gateway_patients.c
    rows = conn.execute(
        sa.select(gp.gateway_id, gp.patient_id)
        .join(gateways, g.gateway_id == gp.gateway_id)
        .where(gp.gateway_id.in_(ids), gp.revoked_at.is_(None), g.revoked_at.is_(None))
    )
    found: dict[str, set[str]] = {}
    for gateway_id, patient_id in rows:
        found.setdefault(gateway_id, set()).add(patient_id)
    return {k: frozenset(v) for k, v in found.items()}
