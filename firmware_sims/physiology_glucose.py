"""Seeded glucose physiology for fingerstick meters: type 1 and type 2 days with meals, dawn
phenomenon, hypoglycaemia episodes, and meter error within ISO 15197:2013 (pure).

The model is descriptive, not a metabolic simulator: plasma glucose is a fasting baseline plus
a dawn rise, meal excursions and hypoglycaemic dips, with day-to-day variation; a reading is
that value seen through a meter's error. Figures and their sources:

- Post-prandial excursion peaks 60-90 min after the meal start and returns over 2-3 h; targets
  "peak post-prandial < 180 mg/dL", pre-prandial 80-130 (ADA Standards of Care 2024, Sec. 6,
  docs/clinical-rules.md section 1).
- Dawn phenomenon: a rise of roughly 10-30 mg/dL between about 04:00 and 08:00 (Porcellati et
  al., Diabetes Care 2013;36:3860, "Thirty years of research on the dawn phenomenon").
- Hypoglycaemia levels: < 70 mg/dL level 1, < 54 mg/dL level 2 (ADA 2024 Sec. 6).
- Meter error, ISO 15197:2013 clause 6.3.3: 95 % of results within +-15 mg/dL of the reference
  below 100 mg/dL and within +-15 % at or above 100 mg/dL. The simulated error is Gaussian with
  a standard deviation of the limit / 2.5 (about 98.8 % inside the limit), then clipped to
  +-1.6 x the limit (ISO also asks 99 % in consensus error grid zones A and B).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from firmware_sims.errors import ScenarioError


class DiabetesType(StrEnum):
    """Which pattern to generate."""

    T1 = "t1"
    T2 = "t2"


@dataclass(frozen=True, slots=True)
class GlucoseParams:
    """Parameters of a patient's glucose pattern (mg/dL unless named otherwise)."""

    diabetes_type: DiabetesType = DiabetesType.T2
    fasting_mg_dl: float = 135.0
    meal_rise_mg_dl: float = 70.0  # mean peak rise above baseline after a main meal
    dawn_rise_mg_dl: float = 20.0
    day_sd_mg_dl: float = 12.0  # day-to-day variation of the baseline
    hypo_per_week: float = 0.0  # spontaneous hypoglycaemia episodes per week
    hypo_nadir_mg_dl: float = 48.0
    hypo_days: tuple[int, ...] = ()  # days (0-based) with a forced episode before lunch
    readings_per_day: int = 2  # 1-7: which of the day's test times are used
    control_solution_days: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.readings_per_day <= len(TEST_TIMES):
            raise ScenarioError(
                "glucose.readings_per_day",
                f"must be 1..{len(TEST_TIMES)}, got {self.readings_per_day}",
            )
        if not 20 <= self.fasting_mg_dl <= 400:
            raise ScenarioError("glucose.fasting_mg_dl", "must be 20..400")


# Local test times (hour, minute, meal context), in the order a patient adds them.
TEST_TIMES: tuple[tuple[int, int, str], ...] = (
    (7, 0, "fasting"),
    (19, 30, "postprandial"),
    (12, 0, "preprandial"),
    (22, 30, "bedtime"),
    (18, 0, "preprandial"),
    (9, 30, "postprandial"),
    (14, 0, "postprandial"),
)
MEALS_H = (7.5, 12.5, 18.5)  # local meal starts


@dataclass(frozen=True, slots=True)
class GlucoseSample:
    """One planned fingerstick: when (UTC), true plasma glucose, what the meter shows."""

    at_utc: datetime
    true_mg_dl: float
    meter_mg_dl: float
    meal: str
    control_solution: bool = False


def iso_15197_limit_mg_dl(reference_mg_dl: float) -> float:
    """The ISO 15197:2013 accuracy limit around a reference value (clause 6.3.3)."""
    return 15.0 if reference_mg_dl < 100 else 0.15 * reference_mg_dl


def meter_reading(reference_mg_dl: float, rng: random.Random) -> float:
    """A meter's result for a reference value: ISO-conformant Gaussian error, whole mg/dL,
    within the 20-600 mg/dL display range."""
    limit = iso_15197_limit_mg_dl(reference_mg_dl)
    error = max(-1.6 * limit, min(1.6 * limit, rng.gauss(0.0, limit / 2.5)))
    return float(min(600, max(20, round(reference_mg_dl + error))))


def _excursion(hours_since_meal: float, rise: float) -> float:
    # gamma-like curve peaking at 1.25 h, back near baseline by ~3.5 h
    if hours_since_meal <= 0:
        return 0.0
    k = hours_since_meal / 1.25
    return rise * k * math.exp(1 - k)


@dataclass
class GlucoseModel:
    """Plasma glucose as a function of local time, for one seeded patient."""

    params: GlucoseParams
    seed: int
    _day_offsets: dict[int, float] = field(default_factory=dict)
    _hypos: dict[int, float] = field(default_factory=dict)  # day -> local hour of the nadir

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)  # noqa: S311 (seeded simulation)
        p = self.params
        for day in range(366):
            self._day_offsets[day] = rng.gauss(0.0, p.day_sd_mg_dl)
            if rng.random() < p.hypo_per_week / 7.0:
                self._hypos[day] = rng.choice((3.0, 11.0, 16.5))  # night, pre-lunch, afternoon
        for day in p.hypo_days:
            self._hypos[day] = 11.9

    def true_mg_dl(self, day: int, local_hour: float) -> float:
        """Plasma glucose on `day` (0-based) at `local_hour` (0-24)."""
        p = self.params
        value = p.fasting_mg_dl + self._day_offsets.get(day, 0.0)
        if 3.5 <= local_hour <= 9.0:  # dawn: up from 04:00, fades after breakfast
            value += p.dawn_rise_mg_dl * math.sin(math.pi * (local_hour - 3.5) / 5.5)
        scale = 1.25 if p.diabetes_type is DiabetesType.T1 else 1.0
        for meal_h in MEALS_H:
            value += _excursion(local_hour - meal_h, p.meal_rise_mg_dl * scale)
        nadir_h = self._hypos.get(day)
        if nadir_h is not None and abs(local_hour - nadir_h) < 1.0:
            depth = (value - p.hypo_nadir_mg_dl) * (1 - abs(local_hour - nadir_h))
            value -= depth
        return max(20.0, value)


def plan_glucose(
    params: GlucoseParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
) -> list[GlucoseSample]:
    """Every fingerstick of the period, in time order (reproducible for a seed).

    A forced hypoglycaemia day always gets a test at its nadir (the patient felt it).
    """
    model = GlucoseModel(params, seed)
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 (seeded simulation)
    local_midnight = (start_utc + timedelta(minutes=utc_offset_min)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=None
    )
    out: list[GlucoseSample] = []
    for day in range(days):
        times = list(TEST_TIMES[: params.readings_per_day])
        if day in params.hypo_days:
            times.append((11, 54, "casual"))
        for hour, minute, meal in sorted(times):
            jitter_min = rng.randint(-10, 10)
            local = local_midnight + timedelta(days=day, hours=hour, minutes=minute + jitter_min)
            true = model.true_mg_dl(day, local.hour + local.minute / 60)
            at_utc = (local - timedelta(minutes=utc_offset_min)).replace(tzinfo=start_utc.tzinfo)
            if at_utc < start_utc:
                continue
            out.append(GlucoseSample(at_utc, round(true, 1), meter_reading(true, rng), meal))
        if day in params.control_solution_days:
            local = local_midnight + timedelta(days=day, hours=10)
            at_utc = (local - timedelta(minutes=utc_offset_min)).replace(tzinfo=start_utc.tzinfo)
            out.append(GlucoseSample(at_utc, 110.0, meter_reading(110.0, rng), "casual", True))
    out.sort(key=lambda s: s.at_utc)
    return out
