"""The escalation decision (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.delivery.escalation import (
    ConfirmationState,
    Escalate,
    EscalationPolicy,
    Settled,
    WaitUntil,
    decide,
)
from alerts.events import Priority

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = EscalationPolicy(ack_timeout=timedelta(minutes=10))
OPEN_HIGH = ConfirmationState(Priority.HIGH, tier=0, tier_since=T0, max_tier=2)


def test_waits_until_the_timeout_then_escalates_one_tier() -> None:
    assert decide(OPEN_HIGH, T0 + timedelta(minutes=9), POLICY) == WaitUntil(
        T0 + timedelta(minutes=10)
    )
    assert decide(OPEN_HIGH, T0 + timedelta(minutes=10), POLICY) == Escalate(1)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (ConfirmationState(Priority.HIGH, 0, T0, 2, acknowledged_at=T0), "acknowledged"),
        (ConfirmationState(Priority.HIGH, 0, T0, 2, resolved_at=T0), "resolved"),
        (ConfirmationState(Priority.MEDIUM, 0, T0, 2), "not high priority"),
        (ConfirmationState(None, 0, T0, 2), "not high priority"),
        (ConfirmationState(Priority.HIGH, 2, T0, 2), "no further tier"),
    ],
)
def test_settled_states_never_escalate(state: ConfirmationState, reason: str) -> None:
    assert decide(state, T0 + timedelta(days=3), POLICY) == Settled(reason)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(OPEN_HIGH, T0.replace(tzinfo=None), POLICY)
