"""A clinician's handling of an alert: acknowledgement and resolution with a note.

`acknowledge` is `confirmation.acknowledge` (which stops escalation and tells the teams) plus the
member's note; `resolve` records that a clinician closed the alert (acknowledging it first if
nobody had, so escalation stops) with why. The engine keeps evaluating the rule: if the
condition persists it updates the same episode, and a new episode can open after it clears.
Rows of `alert_actions` are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from alerts.delivery import confirmation
from alerts.delivery.errors import InvalidFieldError
from alerts.delivery.tables import RESOLVE, alert_actions

ACKNOWLEDGE: Final = "acknowledge"
NOTE_MAX_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class AlertAction:
    """One acknowledgement or resolution of an alert."""

    alert_id: str
    member_id: str
    action: str
    note: str | None
    at: datetime
    source: str | None


def _note(note: str | None) -> str | None:
    if note is None:
        return None
    note = note.strip()
    if not note or len(note) > NOTE_MAX_CHARS:
        raise InvalidFieldError("note", f"must be 1 to {NOTE_MAX_CHARS} characters")
    return note


def _add(
    conn: sa.Connection,
    *,
    alert_id: str,
    member_id: str,
    action: str,
    note: str | None,
    at: datetime,
    source: str | None,
) -> None:
    conn.execute(
        alert_actions.insert().values(
            alert_id=alert_id, member_id=member_id, action=action, note=note, at=at, source=source
        )
    )


def acknowledge(
    conn: sa.Connection,
    alert_id: str,
    member_id: str,
    at: datetime,
    *,
    note: str | None = None,
    source: str | None = None,
) -> bool:
    """Acknowledge an alert as `member_id`, with an optional note.

    Returns True for the alert's first acknowledgement.

    Raises:
        NotFoundError, AcknowledgementRefusedError: see `confirmation.acknowledge`.
        InvalidFieldError: an empty or too long note (field ``"note"``).
    """
    text = _note(note)
    first = confirmation.acknowledge(
        conn, alert_id, member_id, at, source=confirmation.AckSource("api", source, audited=True)
    )
    _add(
        conn,
        alert_id=alert_id,
        member_id=member_id,
        action=ACKNOWLEDGE,
        note=text,
        at=at,
        source=source,
    )
    return first


def resolve(
    conn: sa.Connection,
    alert_id: str,
    member_id: str,
    at: datetime,
    *,
    note: str,
    source: str | None = None,
) -> bool:
    """Close an alert as handled, saying why; acknowledges it first when nobody had.

    Returns True for the first resolution (later ones only add their note).

    Raises:
        NotFoundError, AcknowledgementRefusedError: see `confirmation.acknowledge`.
        InvalidFieldError: an empty or too long note (field ``"note"``).
    """
    text = _note(note)
    confirmation.acknowledge(
        conn, alert_id, member_id, at, source=confirmation.AckSource("api", source, audited=True)
    )
    a = alert_actions.c
    earlier = conn.execute(
        sa.select(a.id).where(a.alert_id == alert_id, a.action == RESOLVE).limit(1)
    ).first()
    _add(
        conn,
        alert_id=alert_id,
        member_id=member_id,
        action=RESOLVE,
        note=text,
        at=at,
        source=source,
    )
    return earlier is None


def actions_of(conn: sa.Connection, alert_id: str) -> list[AlertAction]:
    """Every acknowledgement and resolution of an alert, oldest first."""
    a = alert_actions.c
    rows = conn.execute(sa.select(alert_actions).where(a.alert_id == alert_id).order_by(a.id))
    return [AlertAction(r.alert_id, r.member_id, r.action, r.note, r.at, r.source) for r in rows]
