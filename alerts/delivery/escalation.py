"""When an unacknowledged high-priority alert escalates (pure: state and time come in).

IEC 60601-1-8 "distributed alarm system with confirmed delivery" (docs/reliability.md): a 2xx from
the receiver is delivery; a care-team member's acknowledgement is confirmation; a high-priority
alert with no confirmation within `ack_timeout` moves to the next escalation tier (another member on
call, another institution following the patient) and that is itself an event (`alert.escalated`).
Each tier gets a fresh `ack_timeout` before the next one is paged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.events import Priority


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """How long each tier has to acknowledge before the next tier is paged."""

    ack_timeout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ConfirmationState:
    """What delivery knows about an alert (its own table, fed by the engine's events).

    Attributes:
        priority: the alert's current priority.
        tier: the escalation tier currently paged (0 = the primary teams).
        tier_since: when the current tier was paged (the alert's opening for tier 0).
        max_tier: the highest tier any endpoint following the patient sits at.
        acknowledged_at: when a member acknowledged, if anyone did.
        resolved_at: when the engine resolved the alert, if it did.
    """

    priority: Priority | None
    tier: int
    tier_since: datetime
    max_tier: int
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Escalate:
    """Page tier `tier` now."""

    tier: int


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing to do before `at`."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """Nothing will ever be due: acknowledged, resolved, not high priority, or no tier left."""

    reason: str


Decision = Escalate | WaitUntil | Settled


def decide(state: ConfirmationState, now: datetime, policy: EscalationPolicy) -> Decision:
    """Whether `state` escalates at `now`.

    Raises:
        ValueError: `now` or `state.tier_since` is a naive datetime.
    """
    if now.tzinfo is None or state.tier_since.tzinfo is None:
        raise ValueError("now, tier_since: must be aware datetimes")
    if state.acknowledged_at is not None:
        return Settled("acknowledged")
    if state.resolved_at is not None:
        return Settled("resolved")
    if state.priority is not Priority.HIGH:
        return Settled("not high priority")
    if state.tier >= state.max_tier:
        return Settled("no further tier")
    due = state.tier_since + policy.ack_timeout
    if now >= due:
        return Escalate(state.tier + 1)
    return WaitUntil(due)
