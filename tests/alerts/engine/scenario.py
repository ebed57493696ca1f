"""A small population whose readings open, update and resolve a variety of alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devices.reading import Reading
from devices.special import Special
from tests.alerts.engine.support import reading

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def first_batch() -> list[Reading]:
    """Readings up to NOW - 1 h."""
    out: list[Reading] = []
    t = NOW - timedelta(hours=3)
    # hypo L2 then still low: one open episode with two triggering readings.
    out += [reading("p-low", t, 1, glucose=2.7), reading("p-low", t + timedelta(hours=1), 2,
            glucose=Special.NEGATIVE_INFINITY)]  # fmt: skip
    # low that cleared within the batch: opened and resolved in one evaluation.
    out += [reading("p-dip", t, 1, glucose=2.9), reading("p-dip", t + timedelta(minutes=20), 2,
            glucose=6.0)]  # fmt: skip
    # a crisis confirmed by its re-measurement.
    out += [reading("p-bp", t, 1, bp=(186, 100)), reading("p-bp", t + timedelta(minutes=2), 2,
            bp=(184, 104))]  # fmt: skip
    # control solution is never glucose; ketone-free normal patient.
    out += [reading("p-ctl", t, 1, glucose=1.5, status=("control_solution",))]
    # 14 days of variable glucose for the window rules (CV, TIR), 3 per day.
    values = [3.5, 14.5, 6.0]
    for day in range(14):
        for k, v in enumerate(values):
            at = NOW - timedelta(days=day, hours=2 + 5 * k)
            out.append(reading("p-var", at, 100 + 3 * day + k, glucose=v))
    return out


def second_batch() -> list[Reading]:
    """Readings at NOW + 10 min: p-low recovers, p-bp is still high, p-dip dips again."""
    t = NOW + timedelta(minutes=10)
    return [
        reading("p-low", t, 3, glucose=5.2),
        reading("p-bp", t, 3, bp=(190, 100)),
        reading("p-dip", t, 3, glucose=2.8),
    ]
