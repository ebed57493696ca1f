"""Who a token may name (adapter over the care-team record): active members and patients."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from api.errors import TokenError, UnavailableError
from api.tokens import Actor
from careteam.tables import care_team_members
from ingest import schema


def check_subject(conn: sa.Connection, actor: Actor, subject: str) -> None:
    """Check that a token's subject exists in the record.

    Raises:
        TokenError: an unknown or inactive member, or an unknown patient.
        UnavailableError: the record store could not be read (or lacks its tables).
    """
    try:
        if actor is Actor.MEMBER:
            m = care_team_members.c
            row = conn.execute(sa.select(m.active).where(m.id == subject)).first()
            if row is None or not row.active:
                raise TokenError("no active care-team member has that id")
        elif actor is Actor.PATIENT:
            p = schema.patients.c
            if conn.execute(sa.select(p.patient_id).where(p.patient_id == subject)).first() is None:
                raise TokenError("no patient has that id")
    except SQLAlchemyError as exc:
        raise UnavailableError(
            f"the record store could not be read ({type(exc).__name__})"
        ) from None
