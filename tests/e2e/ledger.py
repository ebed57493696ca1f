"""The fault suite's checker: follows every reading and every alert through the chain.

Readings, by `reading_id`, through four stages: produced (the simulated firmware's records),
committed in the hub's outbox, stored in the record store, mirrored to the time-series server.
Alerts, by rule: expected by the scenario, raised by the engine (`alert.opened` events),
delivered to the care team's receiver (verified webhooks, by event id), and acknowledged.

At each stage it reports what is *lost* (an earlier stage had it, this one does not),
*duplicated* (more than one copy where exactly one must be) and *altered* (the stored
content differs from what the firmware produced), plus *phantoms* (ids nobody produced). A
report is ok only when every list is empty. Pure: the stages come in as data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# What a stored reading must keep of what the device produced: the value (mmol/L, to the
# precision the conversions keep) and the raw device time.
Content = tuple[float, str | None]


@dataclass(frozen=True, slots=True)
class StageReport:
    """One stage's defects."""

    stage: str
    lost: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()
    altered: tuple[str, ...] = ()
    phantom: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.altered or self.phantom)

    def line(self) -> str:
        return (
            f"{self.stage}: lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"altered {len(self.altered)}, phantom {len(self.phantom)}"
        )


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """Every stage's report; `ok` when nothing is lost, duplicated, altered or invented."""

    stages: tuple[StageReport, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)

    def __str__(self) -> str:
        return "; ".join(s.line() for s in self.stages)

    def stage(self, name: str) -> StageReport:
        return next(s for s in self.stages if s.stage == name)


def _dupes(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(i for i, n in Counter(ids).items() if n > 1))


def _same(a: Content, b: Content) -> bool:
    return abs(a[0] - b[0]) <= 1e-6 * max(1.0, abs(a[0])) and a[1] == b[1]


def check_readings(
    produced: Mapping[str, Content],
    hub: Iterable[str],
    stored: Iterable[tuple[str, Content]],
    mirrored: Iterable[str] | None = None,
) -> list[StageReport]:
    """Readings through hub outbox, record store and (if given) the time-series mirror.

    `stored` lists every row of the record store (id, content), so a duplicate row shows.
    `mirrored` lists one id per sample found (a duplicate sample shows as a repeat).
    """
    produced_ids = set(produced)
    hub_ids = list(hub)
    stored_rows = list(stored)
    stored_ids = [i for i, _ in stored_rows]
    reports = [
        StageReport(
            "hub outbox",
            lost=tuple(sorted(produced_ids - set(hub_ids))),
            duplicated=_dupes(hub_ids),
            phantom=tuple(sorted(set(hub_ids) - produced_ids)),
        ),
        StageReport(
            "record store",
            lost=tuple(sorted(produced_ids - set(stored_ids))),
            duplicated=_dupes(stored_ids),
            altered=tuple(
                sorted(i for i, c in stored_rows if i in produced and not _same(c, produced[i]))
            ),
            phantom=tuple(sorted(set(stored_ids) - produced_ids)),
        ),
    ]
    if mirrored is not None:
        mirrored_ids = list(mirrored)
        reports.append(
            StageReport(
                "time-series mirror",
                lost=tuple(sorted(set(stored_ids) - set(mirrored_ids))),
                duplicated=_dupes(mirrored_ids),
                phantom=tuple(sorted(set(mirrored_ids) - set(stored_ids))),
            )
        )
    return reports


def check_alerts(
    expected: Mapping[str, int],
    raised: Iterable[tuple[str, str]],
    delivered: Iterable[str],
    acknowledged: Iterable[str] | None = None,
) -> list[StageReport]:
    """Alerts: `expected` count per rule; `raised` (rule id, event id) of `alert.opened`;
    `delivered` event ids received by the care team (every receipt, so a repeat shows);
    `acknowledged` alert events confirmed (event ids), when the scenario acknowledges."""
    raised_list = list(raised)
    by_rule = Counter(rule for rule, _ in raised_list)
    lost_rules = [f"{r} x{n - by_rule[r]}" for r, n in expected.items() if by_rule[r] < n]
    extra_rules = [f"{r} x{n - expected.get(r, 0)}" for r, n in by_rule.items()
                   if n > expected.get(r, 0)]  # fmt: skip
    event_ids = [e for _, e in raised_list]
    delivered_list = list(delivered)
    reports = [
        StageReport(
            "alerts raised",
            lost=tuple(sorted(lost_rules)),
            duplicated=_dupes(event_ids),
            phantom=tuple(sorted(extra_rules)),
        ),
        StageReport(
            "alerts delivered",
            lost=tuple(sorted(set(event_ids) - set(delivered_list))),
            duplicated=_dupes(delivered_list),
            phantom=tuple(sorted(set(delivered_list) - set(event_ids))),
        ),
    ]
    if acknowledged is not None:
        acked = list(acknowledged)
        reports.append(
            StageReport(
                "alerts acknowledged",
                lost=tuple(sorted(set(event_ids) - set(acked))),
                duplicated=_dupes(acked),
            )
        )
    return reports


def report(*parts: list[StageReport]) -> LedgerReport:
    """Combine the stage reports of readings and alerts."""
    return LedgerReport(tuple(s for part in parts for s in part))
