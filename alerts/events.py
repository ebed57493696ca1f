"""Alert events: the contract between the rules engine (producer) and delivery (consumer).

The engine writes an alert change and its `AlertEvent`s in one transaction; delivery turns each
event into webhook deliveries (transactional outbox). Payloads are thin: ids, type, priority, a
patient *reference* and times, never readings or names (docs/threat-model.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

EVENT_NAMESPACE: Final = uuid.UUID("3c0f5e1a-7b2d-5e4f-9a1c-2d3e4f5a6b7c")


class Priority(StrEnum):
    """Alarm priority in the sense of IEC 60601-1-8."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class EventType(StrEnum):
    """Webhook event types (published schema: alerts/delivery/schema)."""

    ALERT_OPENED = "alert.opened"
    ALERT_UPDATED = "alert.updated"
    ALERT_ESCALATED = "alert.escalated"
    ALERT_RESOLVED = "alert.resolved"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    DELIVERY_FAILING = "delivery.failing"
    GATEWAY_OFFLINE = "gateway.offline"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """Something happened to an alert (or a technical condition) that care teams must hear of.

    `event_id` is deterministic (see `event_id_for`) so that re-running an evaluation after a
    crash produces the same event, and the outbox's UNIQUE constraint absorbs the duplicate.
    """

    event_id: str
    type: EventType
    occurred_at: datetime
    patient_id: str | None
    alert_id: str | None = None
    rule_id: str | None = None
    priority: Priority | None = None
    # A monotonically increasing revision of the alert the event describes (1 = opened).
    revision: int = 1


def event_id_for(type_: EventType, subject_id: str, revision: int) -> str:
    """Deterministic event id: UUIDv5 over the event type, its subject and the revision."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{type_.value}|{subject_id}|{revision}"))
