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
- `spo2.low_sustained`: SpO2 (minute means, spot-checks) below 90 % (88 % with `copd`) for 5
  minutes or more, observations at most 15 minutes apart (Fletcher et al. 1987; BTS 2017).
- `heart_rate.tachycardia_rest` / `heart_rate.bradycardia_rest`: a strap's minute mean (or an
  oximeter's pulse) > 100 or < 40 /min for 10 consecutive minutes (gaps <= 2 min) between 00:00
  and 06:00 local time (the resting proxy of docs/clinical-rules.md section 6).
- `temperature.fever`: a temperature >= 38.0 C (CDC).
- `weight.gain_hf_3d`: with `heart_failure`, a weight more than 2 kg above the lowest of the
  78 hours before it (ESC 2021).
- `cgm.tir_14d`, `cgm.tbr_14d`, `cgm.cv_14d`: over the CGM's last 14 days at the scenario's
  end, each reading weighted by the time to the next (at most 15 min), with >= 70 % covered:
  time in 70-180 mg/dL < 70 %, below 70 mg/dL > 4 %, CV > 36 % (Battelino et al. 2019).

Episodes: readings of one rule within 2 hours of each other are one episode.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.scenario import PlannedSample, Scenario
from firmware_sims.wearable_plans import (
    CgmSample,
    HeartRateMinute,
    Spo2Minute,
    Spo2SpotCheck,
    TemperatureSample,
    WeightSample,
)

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


def _sustained(
    points: Sequence[tuple[datetime, bool]], *, minutes: float, gap: timedelta
) -> list[datetime]:
    """Times at which a run of True points (each lasting a minute, at most `gap` apart) has
    lasted `minutes`."""
    out: list[datetime] = []
    start: datetime | None = None
    last: datetime | None = None
    for moment, past in sorted(points):
        if not past:
            start = None
        elif start is None or last is None or moment - last > gap:
            start = moment
        last = moment
        if (
            past
            and start is not None
            and moment + timedelta(minutes=1) - start >= timedelta(minutes=minutes)
        ):
            out.append(moment)
    return out


def _local_hour(moment: datetime, utc_offset_min: int) -> int:
    return (moment + timedelta(minutes=utc_offset_min)).hour


def wearable_evidence(
    samples: Sequence[PlannedSample], *, utc_offset_min: int, conditions: frozenset[str]
) -> dict[str, int]:
    """Episode counts per wearable rule id over one device's planned samples."""
    out: dict[str, int] = {}
    spo2 = [(s.at_utc, s.spo2_pct) for s in samples if isinstance(s, Spo2Minute | Spo2SpotCheck)]
    below = 88.0 if "copd" in conditions else 90.0
    low = _sustained([(t, v < below) for t, v in spo2], minutes=5, gap=timedelta(minutes=15))
    rate = [(s.at_utc, s.mean_bpm) for s in samples if isinstance(s, HeartRateMinute)]
    rate += [(s.at_utc, s.pulse_per_min) for s in samples if isinstance(s, Spo2Minute)]
    night = [(t, v) for t, v in rate if _local_hour(t, utc_offset_min) < 6]
    two = timedelta(minutes=2)
    found = {
        "spo2.low_sustained": low,
        "heart_rate.tachycardia_rest": _sustained(
            [(t, v > 100) for t, v in night], minutes=10, gap=two
        ),
        "heart_rate.bradycardia_rest": _sustained(
            [(t, v < 40) for t, v in night], minutes=10, gap=two
        ),
        "temperature.fever": [
            s.at_utc for s in samples if isinstance(s, TemperatureSample) and s.temperature_c >= 38
        ],
        "weight.gain_hf_3d": _weight_gains(samples) if "heart_failure" in conditions else [],
    }
    for rule, times in found.items():
        if times:
            out[rule] = _episodes(times)
    out.update(_cgm_evidence([s for s in samples if isinstance(s, CgmSample)]))
    return out


def _weight_gains(samples: Sequence[PlannedSample]) -> list[datetime]:
    weights = sorted((s.at_utc, s.weight_kg) for s in samples if isinstance(s, WeightSample))
    window = timedelta(hours=78)
    return [
        t for t, kg in weights
        if any(t - window <= u < t and kg - other > 2.0 for u, other in weights)
    ]  # fmt: skip


def _cgm_evidence(samples: Sequence[CgmSample]) -> dict[str, int]:
    if not samples:
        return {}
    end = max(s.at_utc for s in samples)
    recent = sorted((s for s in samples if end - s.at_utc < timedelta(days=14)),
                    key=lambda s: s.at_utc)  # fmt: skip
    weights = [
        min((b.at_utc - a.at_utc).total_seconds(), 900.0) for a, b in itertools.pairwise(recent)
    ] + [300.0]
    covered = sum(weights)
    if covered < 0.70 * 14 * 86_400:
        return {}
    in_range = sum(w for s, w in zip(recent, weights, strict=True) if 70 <= s.glucose_mg_dl <= 180)
    below = sum(w for s, w in zip(recent, weights, strict=True) if s.glucose_mg_dl < 70)
    mean = sum(w * s.glucose_mg_dl for s, w in zip(recent, weights, strict=True)) / covered
    var = sum(w * (s.glucose_mg_dl - mean) ** 2 for s, w in zip(recent, weights, strict=True))
    cv = math.sqrt(var / covered) / mean
    out = {}
    if in_range / covered < 0.70:
        out["cgm.tir_14d"] = 1
    if below / covered > 0.04:
        out["cgm.tbr_14d"] = 1
    if cv > 0.36:
        out["cgm.cv_14d"] = 1
    return out


def scenario_evidence(scenario: Scenario) -> dict[str, int]:
    """Episode counts per rule id over all of a scenario's devices."""
    total: dict[str, int] = {}
    conditions = frozenset(scenario.conditions)
    for index, spec in enumerate(scenario.devices):
        plan = scenario.plan(index)
        if spec.blood_pressure is not None:
            found = bp_evidence(plan)  # type: ignore[arg-type]
        elif plan and all(isinstance(s, GlucoseSample) for s in plan):
            found = glucose_evidence(plan)  # type: ignore[arg-type]
        else:
            found = wearable_evidence(
                plan, utc_offset_min=scenario.utc_offset_min, conditions=conditions
            )
        for rule, count in found.items():
            total[rule] = total.get(rule, 0) + count
    return total
