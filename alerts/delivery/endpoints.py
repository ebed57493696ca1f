"""Webhook endpoints of care teams and their signing secrets (adapter over SQLAlchemy Core).

The tables belong to the care-team record (`careteam.tables`); registering an endpoint is
delivery's business because delivery owns the SSRF guard and the event types. URLs pass the
guard at registration (static checks and resolution); the worker checks them again before every
send. Secrets are sealed at rest (`careteam.secrets`): the record holds ciphertext bound to the
endpoint, so a database dump alone cannot sign.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from alerts.delivery import guard, signing
from alerts.delivery.errors import InvalidFieldError
from alerts.delivery.ssrf import SsrfPolicy
from alerts.events import EventType
from careteam.patients import text as _text
from careteam.registry import check_tier as _tier
from careteam.registry import require_row as _exists
from careteam.secrets import SecretBox, is_sealed
from careteam.tables import care_teams, webhook_endpoint_secrets, webhook_endpoints

DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RegisteredEndpoint:
    """A new endpoint and its first signing secret (shown to the care team once)."""

    endpoint_id: str
    secret: str


def parse_event_types(values: Iterable[str]) -> tuple[EventType, ...]:
    """Validate the event types an endpoint subscribes to.

    Raises:
        InvalidFieldError: none given, or an unknown type (field ``"event_types"``).
    """
    wanted: list[EventType] = []
    for value in values:
        try:
            kind = EventType(value)
        except ValueError as exc:
            known = ", ".join(t.value for t in EventType)
            raise InvalidFieldError("event_types", f"{value!r} is not one of {known}") from exc
        if kind not in wanted:
            wanted.append(kind)
    if not wanted:
        raise InvalidFieldError("event_types", "subscribe to at least one event type")
    return tuple(wanted)


def register_endpoint(
    conn: sa.Connection,
    team_id: str,
    url: str,
    event_types: Sequence[str],
    *,
    at: datetime,
    policy: SsrfPolicy,
    resolver: guard.Resolver = guard.system_resolver,
    box: SecretBox,
    tier: int = 0,
    description: str = "webhook",
) -> RegisteredEndpoint:
    """Register a webhook endpoint for a team and create its first secret (stored sealed by
    `box`; returned in clear once, for the care team).

    Raises:
        NotFoundError: unknown team. UnsafeUrlError: the SSRF guard refuses the URL.
        InvalidFieldError: unknown event type, bad tier or description.
    """
    _exists(conn, care_teams, "team_id", team_id)
    types = parse_event_types(event_types)
    target, approved = guard.resolve(url, policy, resolver)
    endpoint_id = str(uuid.uuid4())
    guard.audit_allowed(conn, endpoint_id, target, approved, action="registration", at=at)
    conn.execute(
        webhook_endpoints.insert().values(
            id=endpoint_id,
            team_id=team_id,
            url=url,
            event_types=" ".join(t.value for t in types),
            escalation_tier=_tier(tier),
            enabled=True,
            description=_text("description", description),
            created_at=at,
        )
    )
    secret = signing.new_secret()
    conn.execute(
        webhook_endpoint_secrets.insert().values(
            endpoint_id=endpoint_id, secret=box.seal(secret, endpoint_id), created_at=at
        )
    )
    return RegisteredEndpoint(endpoint_id, secret)


def rotate_secret(
    conn: sa.Connection,
    endpoint_id: str,
    at: datetime,
    overlap: timedelta = DEFAULT_ROTATION_OVERLAP,
    *,
    box: SecretBox,
) -> str:
    """Add a new secret (sealed by `box`); the current ones keep signing until `at + overlap`,
    then stop. Returns the new secret in clear (shown once).

    Raises:
        NotFoundError: unknown endpoint. InvalidFieldError: negative overlap.
    """
    if overlap < timedelta(0):
        raise InvalidFieldError("overlap", "must not be negative")
    _exists(conn, webhook_endpoints, "endpoint_id", endpoint_id)
    s = webhook_endpoint_secrets.c
    conn.execute(
        sa.update(webhook_endpoint_secrets)
        .where(
            s.endpoint_id == endpoint_id,
            sa.or_(s.expires_at.is_(None), s.expires_at > at + overlap),
        )
        .values(expires_at=at + overlap)
    )
    secret = signing.new_secret()
    conn.execute(
        webhook_endpoint_secrets.insert().values(
            endpoint_id=endpoint_id, secret=box.seal(secret, endpoint_id), created_at=at
        )
    )
    return secret


def active_secrets(
    conn: sa.Connection, endpoint_ids: Iterable[str], at: datetime, *, box: SecretBox
) -> dict[str, list[str]]:
    """Per endpoint, the secrets (opened) that sign a message sent at `at`, newest first.

    Raises:
        careteam.errors.SecretsError: a stored secret does not open with the configured keys
            (a missing key, or the row was tampered with or moved).
    """
    s = webhook_endpoint_secrets.c
    rows = conn.execute(
        sa.select(s.endpoint_id, s.secret)
        .where(
            s.endpoint_id.in_(set(endpoint_ids)), sa.or_(s.expires_at.is_(None), s.expires_at > at)
        )
        .order_by(s.id.desc())
    )
    found: dict[str, list[str]] = {}
    for endpoint_id, sealed in rows:
        found.setdefault(endpoint_id, []).append(box.open(sealed, endpoint_id))
    return found


def seal_stored_secrets(conn: sa.Connection, box: SecretBox) -> int:
    """Seal every secret still stored in clear (databases from before sealing) and move those
    sealed under an older key to the current one; returns how many rows changed.

    Raises:
        careteam.errors.SecretsError: a sealed secret does not open with the configured keys.
    """
    s = webhook_endpoint_secrets.c
    changed = 0
    for row_id, endpoint_id, stored in conn.execute(
        sa.select(s.id, s.endpoint_id, s.secret).with_for_update()
    ).all():
        sealed = (
            box.reseal(stored, endpoint_id) if is_sealed(stored) else box.seal(stored, endpoint_id)
        )
        if sealed != stored:
            conn.execute(
                sa.update(webhook_endpoint_secrets).where(s.id == row_id).values(secret=sealed)
            )
            changed += 1
    return changed


def set_endpoint_enabled(
    conn: sa.Connection, endpoint_id: str, enabled: bool, at: datetime, reason: str | None = None
) -> None:
    """Enable (clearing the failure state) or disable an endpoint.

    Raises:
        NotFoundError: unknown endpoint.
    """
    _exists(conn, webhook_endpoints, "endpoint_id", endpoint_id)
    values: dict[str, object] = (
        {"enabled": True, "disabled_reason": None, "disabled_at": None, "failing_since": None}
        if enabled
        else {"enabled": False, "disabled_reason": reason or "disabled", "disabled_at": at}
    )
    conn.execute(
        sa.update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )
