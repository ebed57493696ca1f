"""What a scenario's planned readings show, by the clinical definitions behind each rule id
(pure). Used to check that a scenario's `expected_alerts` are true of its own data before an
end-to-end run relies on them; the rules engine owns the real (versioned, vectorized) rules.

Reference definitions (docs/clinical-rules.md):
- `glucose.hypo_l2`: a reading < 54 mg/dL; `glucose.hypo_l1`: 54 <= reading < 70 (ADA
  Standards of Care 2024, Sec. 6). Control-solution results never count.
- `glucose.hyper`: > 250 mg/dL (Battelino et al. 2019, "level 2").
- `bp.crisis`: systolic >= 180 and/or diastolic >= 120 (AHA hypertensive crisis).
- `bp.home_aha_ama_2020`: the mean of the last 7 days >= 135 systolic or >= 85 diastolic (home
  equivalent of office 140/90; AHA/AMA 2020, docs/clinical-rules.md section 4; the scenarios' care
  plan sets this traditional threshold on the engine rule of the same id).
- `bp.trend_14d`: least-squares slope of daily mean systolic over the last 14 days >= 1.0
  mmHg/day (a project convention, not a guideline: a 14 mmHg rise in two weeks).

Episodes: readings of one rule within 2 hours of each other are one episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.scenario import Scenario

EPISODE_GAP = timedelta(hours=2)
TREND_MIN_MMHG_PER_DAY = 1.0


def _episodes(times: Sequence[datetime]) -> int:
    count = 0
    last: datetime | None = None
    for moment in sorted(times):
        if last is None or moment - last > EPISODE_GAP:
            count += 1
        last = moment
    return count


def glucose_evidence(samples: Sequence[GlucoseSample]) -> dict[str, int]:
    """Episode counts per glucose rule id (meter values, control solution excluded)."""
    clinical = [s for s in samples if not s.control_solution]
    rules = {
        "glucose.hypo_l2": [s.at_utc for s in clinical if s.meter_mg_dl < 54],
        "glucose.hypo_l1": [s.at_utc for s in clinical if 54 <= s.meter_mg_dl < 70],
        "glucose.hyper": [s.at_utc for s in clinical if s.meter_mg_dl > 250],
    }
    return {rule: _episodes(times) for rule, times in rules.items() if times}


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx


def bp_evidence(samples: Sequence[BloodPressureSample]) -> dict[str, int]:
    """Episode counts per blood-pressure rule id."""
    out: dict[str, int] = {}
    crisis = [s.at_utc for s in samples if s.systolic_mmhg >= 180 or s.diastolic_mmhg >= 120]
    if crisis:
        out["bp.crisis"] = _episodes(crisis)
    if not samples:
        return out
    end = max(s.at_utc for s in samples)
    week = [s for s in samples if end - s.at_utc < timedelta(days=7)]
    mean_sys = sum(s.systolic_mmhg for s in week) / len(week)
    mean_dia = sum(s.diastolic_mmhg for s in week) / len(week)
    if mean_sys >= 135 or mean_dia >= 85:
        out["bp.home_aha_ama_2020"] = 1
    fortnight = [s for s in samples if end - s.at_utc < timedelta(days=14)]
    by_day: dict[int, list[float]] = {}
    for s in fortnight:
        by_day.setdefault((s.at_utc - end).days, []).append(s.systolic_mmhg)
    if len(by_day) >= 10:
        days = sorted(by_day)
        slope = _slope([float(d) for d in days], [sum(by_day[d]) / len(by_day[d]) for d in days])
        if slope >= TREND_MIN_MMHG_PER_DAY:
            out["bp.trend_14d"] = 1
    return out


def scenario_evidence(scenario: Scenario) -> dict[str, int]:
    """Episode counts per rule id over all of a scenario's devices."""
    total: dict[str, int] = {}
    for index, spec in enumerate(scenario.devices):
        plan = scenario.plan(index)
        found = (
            glucose_evidence(plan)  # type: ignore[arg-type]
            if spec.glucose is not None
            else bp_evidence(plan)  # type: ignore[arg-type]
        )
        for rule, count in found.items():
            total[rule] = total.get(rule, 0) + count
    return total
