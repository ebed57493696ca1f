"""The audit trail in the record store (adapter): append in the caller's transaction, read, verify.

`append` chains the new entry to the current head. On PostgreSQL it first takes a
transaction-scoped advisory lock, so concurrent transactions append one after the other and
the chain never forks; the lock is held until the caller commits, so append last, just before
commit. On SQLite the database's single writer does the same. If the caller's transaction rolls
back, its entry goes with it: an entry exists exactly when the action it records happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from careteam.audit import (
    GENESIS,
    Actor,
    Anchor,
    AuditEntry,
    AuditRecord,
    VerifyResult,
    chain,
    verify_chain,
)
from careteam.tables import audit_log

# pg_advisory_xact_lock key for "the audit chain's head is being extended" ("hvaudit!").
LOCK_KEY: Final = 0x6876617564697421 & 0x7FFF_FFFF_FFFF_FFFF
_PAGE: Final = 1000


def record(actor: Actor, action: str, **fields: Any) -> AuditRecord:
    """An `AuditRecord` for `actor` (its source and purpose filled in) doing `action`."""
    return AuditRecord(
        actor_kind=actor.kind,
        actor_id=actor.id,
        action=action,
        source=fields.pop("source", actor.source),
        purpose=fields.pop("purpose", actor.purpose),
        **fields,
    )


def append(conn: sa.Connection, entry: AuditRecord, at: datetime) -> AuditEntry:
    """Append `entry` to the chain in the caller's transaction and return it as stored.

    Raises:
        careteam.errors.InvalidFieldError: unknown actor kind, action or outcome.
        sqlalchemy.exc.SQLAlchemyError: the database failed (the caller's transaction rolls
            back with the action it recorded).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    c = audit_log.c
    head = conn.execute(sa.select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
    seq, prev = (int(head.seq) + 1, str(head.hash)) if head is not None else (1, GENESIS)
    stored = chain(entry, seq=seq, prev_hash=prev, at=at)
    conn.execute(audit_log.insert().values(**_row(stored)))
    return stored


def _row(entry: AuditEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in audit_log.c.keys()}  # noqa: SIM118


def _entry(row: sa.Row[Any]) -> AuditEntry:
    return AuditEntry(**{name: getattr(row, name) for name in audit_log.c.keys()})  # noqa: SIM118


def iter_entries(
    conn: sa.Connection, *, patient_id: str | None = None, after_seq: int = 0
) -> Iterator[AuditEntry]:
    """Entries in chain order (all, or those about `patient_id`), read a page at a time."""
    c = audit_log.c
    last = after_seq
    while True:
        stmt = sa.select(audit_log).where(c.seq > last).order_by(c.seq).limit(_PAGE)
        if patient_id is not None:
            stmt = stmt.where(c.patient_id == patient_id)
        rows = conn.execute(stmt).all()
        for row in rows:
            yield _entry(row)
        if len(rows) < _PAGE:
            return
        last = int(rows[-1].seq)


def entries(
    conn: sa.Connection, *, patient_id: str | None = None, after_seq: int = 0, limit: int = 100
) -> list[AuditEntry]:
    """At most `limit` entries after `after_seq` in chain order (all, or about `patient_id`)."""
    c = audit_log.c
    stmt = sa.select(audit_log).where(c.seq > after_seq).order_by(c.seq).limit(limit)
    if patient_id is not None:
        stmt = stmt.where(c.patient_id == patient_id)
    return [_entry(row) for row in conn.execute(stmt)]


def head(conn: sa.Connection) -> Anchor | None:
    """The chain's current head (what `homevitals audit anchor` exports), None when empty."""
    c = audit_log.c
    row = conn.execute(sa.select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
    return Anchor(int(row.seq), str(row.hash)) if row is not None else None


def verify(conn: sa.Connection, anchor: Anchor | None = None) -> VerifyResult:
    """Check the whole chain as stored (and that it still reaches `anchor`, when given)."""
    return verify_chain(iter_entries(conn), anchor)
