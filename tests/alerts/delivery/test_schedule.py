"""The retry schedule (docs/threat-model.md, webhooks), walked with a fake clock: no sleeping,
no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.delivery.schedule import SVIX_DELAYS_S, RetrySchedule, parse_retry_after

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NO_JITTER = 0.5


def test_svix_schedule_without_jitter_is_exactly_svix() -> None:
    schedule = RetrySchedule()
    now = T0
    gaps = []
    for failed in range(1, schedule.max_attempts):
        nxt = schedule.next_attempt_at(failed, now, NO_JITTER)
        assert nxt is not None
        gaps.append((nxt - now).total_seconds())
        now = nxt
    assert gaps == [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    assert schedule.next_attempt_at(schedule.max_attempts, now, NO_JITTER) is None
    # "over about a day": the whole schedule spans 27 h 35 min 5 s.
    assert now - T0 == timedelta(hours=27, minutes=35, seconds=5)
    assert schedule.total_span_s() == sum(SVIX_DELAYS_S) == 99305.0


@pytest.mark.parametrize("jitter_unit", [0.0, 0.25, 0.999999])
def test_jitter_stays_within_twenty_percent(jitter_unit: float) -> None:
    schedule = RetrySchedule()
    for failed, base in enumerate(SVIX_DELAYS_S[1:], start=1):
        nxt = schedule.next_attempt_at(failed, T0, jitter_unit)
        assert nxt is not None
        delay = (nxt - T0).total_seconds()
        assert base * 0.8 <= delay <= base * 1.2


def test_jitter_spreads_deliveries_that_failed_together() -> None:
    schedule = RetrySchedule()
    times = {schedule.next_attempt_at(3, T0, u / 10) for u in range(10)}
    assert len(times) == 10


def test_retry_after_postpones_but_never_hastens() -> None:
    schedule = RetrySchedule()
    later = schedule.next_attempt_at(1, T0, NO_JITTER, retry_after_s=120)
    assert later == T0 + timedelta(seconds=120)
    # A Retry-After shorter than the schedule does not make us retry sooner.
    assert schedule.next_attempt_at(3, T0, NO_JITTER, retry_after_s=1) == T0 + timedelta(minutes=30)
    # One header cannot park a delivery for a week.
    capped = schedule.next_attempt_at(1, T0, NO_JITTER, retry_after_s=7 * 86400)
    assert capped == T0 + timedelta(hours=10)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("7", T0) == 7.0
    assert parse_retry_after(" 120 ", T0) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:00 GMT", T0) == 60.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", T0) == 0.0
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after("-5", T0) is None
    assert parse_retry_after(None, T0) is None


@pytest.mark.parametrize(
    ("attempts", "unit", "now"),
    [(0, 0.5, T0), (1, 1.0, T0), (1, -0.1, T0), (1, 0.5, T0.replace(tzinfo=None))],
)
def test_bad_arguments_are_refused(attempts: int, unit: float, now: datetime) -> None:
    with pytest.raises(ValueError, match=r"attempts_made|jitter_unit|now"):
        RetrySchedule().next_attempt_at(attempts, now, unit)
