"""The webhook body of an event (pure): thin, deterministic JSON (schema: schema/event.v1.json).

Thin payloads (docs/threat-model.md): ids, type, priority, a patient *reference*, times and links to
fetch details through the audited API; never readings, names or other identifiers. The body is a
pure function of the stored event, the endpoint's team and the configuration, so every retry of a
delivery sends the same bytes under the same `webhook-id`.

The envelope follows the Standard Webhooks recommendation: ``{"type", "timestamp", "data"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from alerts.delivery import ack_token
from alerts.events import EventType, Priority

SCHEMA_ID: Final = "https://homevitals.org/schema/webhook-event.v1.json"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the outbox keeps it.

    Attributes:
        subject_id: what a technical event is about (the failing endpoint's id for
            `delivery.failing`); None for alert events.
        tier: the escalation tier the event pages (for `alert.escalated`), else None.
        page_members: for `alert.escalated`, and for high-priority `alert.opened` and
            `alert.updated`, per team id, the members that team should page now (their team's
            tier plus their own tier equals the alert's tier); each gets their own
            acknowledgement link.
    """

    event_id: str
    type: EventType
    occurred_at: datetime
    patient_id: str | None
    alert_id: str | None
    rule_id: str | None
    priority: Priority | None
    revision: int
    subject_id: str | None = None
    tier: int | None = None
    page_members: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Where receivers fetch details and post acknowledgements.

    Attributes:
        api_base_url: base URL of the API (``https://api.example.org/v1``).
        ack_base_url: base URL of the acknowledgement app, or None for no callback links.
        ack_key: HMAC key of acknowledgement tokens (>= 32 bytes) when `ack_base_url` is set.
        ack_ttl: how long a callback link stays valid after the event.
    """

    api_base_url: str
    ack_base_url: str | None = None
    ack_key: bytes | None = None
    ack_ttl: timedelta = timedelta(days=2)


ACKNOWLEDGEABLE: Final = frozenset(
    {EventType.ALERT_OPENED, EventType.ALERT_UPDATED, EventType.ALERT_ESCALATED}
)


def acknowledgeable(event_type: EventType, priority: Priority | None) -> bool:
    """True when events of this type and priority carry acknowledgement links."""
    return priority is Priority.HIGH and event_type in ACKNOWLEDGEABLE


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def render(event: StoredEvent, team_id: str, links: LinkConfig) -> bytes:
    """The JSON body delivered to an endpoint of `team_id`.

    Raises:
        ValueError: `occurred_at` is naive, or a callback link is configured without a key.
    """
    if event.occurred_at.tzinfo is None:
        raise ValueError("occurred_at: must be an aware datetime")
    api = links.api_base_url.rstrip("/")
    data: dict[str, object] = {"event_id": event.event_id, "revision": event.revision}
    link_map: dict[str, str] = {}
    if event.patient_id is not None:
        data["patient"] = {"reference": f"Patient/{event.patient_id}"}
    if event.alert_id is not None:
        data["alert_id"] = event.alert_id
        link_map["alert"] = f"{api}/alerts/{event.alert_id}"
    if event.rule_id is not None:
        data["rule_id"] = event.rule_id
    if event.priority is not None:
        data["priority"] = event.priority.value
    if event.tier is not None:
        data["escalation_tier"] = event.tier
    if event.subject_id is not None:
        data["subject_id"] = event.subject_id
    if event.page_members is not None:
        data["page_member_ids"] = list(event.page_members.get(team_id, ()))
    ack_base = links.ack_base_url
    wants_ack = acknowledgeable(event.type, event.priority)
    member_links: dict[str, str] = {}
    if wants_ack and ack_base is not None and event.alert_id is not None:
        if links.ack_key is None:
            raise ValueError("ack_key: required when ack_base_url is set")
        expires_at = event.occurred_at + links.ack_ttl
        for member_id in (event.page_members or {}).get(team_id, ()):
            claims = ack_token.AckClaims(
                event.event_id, event.alert_id, team_id, member_id, expires_at
            )
            token = ack_token.issue(claims, links.ack_key)
            member_links[member_id] = f"{ack_base.rstrip('/')}/ack/{token}"
    if link_map or member_links:
        data["links"] = {
            **link_map,
            **({"acknowledge_members": member_links} if member_links else {}),
        }
    envelope = {"type": event.type.value, "timestamp": _iso(event.occurred_at), "data": data}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")
