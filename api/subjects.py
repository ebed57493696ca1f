"""Who a token may name (adapter over the care-team record): active members and patients."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from api.errors import TokenError, UnavailableError
from api.tokens import Actor
from careteam import record, registry
from careteam.errors import NotFoundError


def check_subject(conn: sa.Connection, actor: Actor, subject: str) -> None:
    """Check that a token's subject exists in the record.

    Raises:
        TokenError: an unknown or inactive member, or an unknown or inactive patient.
        UnavailableError: the record store could not be read (or lacks its tables).
    """
    try:
        if actor is Actor.MEMBER:
            if not registry.get_member(conn, subject).active:
                raise TokenError("no active care-team member has that id")
        elif actor is Actor.PATIENT and not record.get_patient(conn, subject).active:
            raise TokenError("no active patient has that id")
    except NotFoundError:
        raise TokenError(
            f"no {'active care-team member' if actor is Actor.MEMBER else 'patient'} has that id"
        ) from None
    except SQLAlchemyError as exc:
        raise UnavailableError(
            f"the record store could not be read ({type(exc).__name__})"
        ) from None
