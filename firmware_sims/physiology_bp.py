"""Seeded blood-pressure physiology for home cuffs: circadian rhythm with nocturnal dipping,
measurement noise, white-coat readings, slow trends, pulse, irregular-pulse and movement flags
(pure).

Figures and their sources:
- Circadian rhythm: lowest in sleep, a morning surge after waking, plateau by day; "dippers"
  fall 10-20 % at night, non-dippers < 10 % (O'Brien et al., Lancet 1988;2:397; ESH 2013 ABPM
  position paper, J Hypertens 2013;31:1731).
- Within-session reading-to-reading variability: SD about 5-8 mmHg systolic, 4-5 diastolic
  (Stergiou et al., J Hypertens 2002;20:1297 on home BP reproducibility).
- White-coat (alerting) reaction: +10-20 mmHg systolic on the first reading of a tense session
  (Mancia et al., Lancet 1983;2:695).
- Home monitoring schedule: two readings one minute apart, morning 06-09 and evening 18-21
  (AHA/AMA 2020 policy, China 2019 HBPM guideline; docs/clinical-rules.md section 4).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from firmware_sims.errors import ScenarioError


@dataclass(frozen=True, slots=True)
class BloodPressureParams:
    """Parameters of a patient's blood pressure (mmHg, /min)."""

    systolic_mmhg: float = 128.0  # daytime mean at the start
    diastolic_mmhg: float = 80.0
    pulse_per_min: float = 70.0
    dipping_pct: float = 12.0  # nocturnal fall (0 = non-dipper)
    morning_surge_mmhg: float = 8.0
    noise_sd_mmhg: float = 6.0
    white_coat_prob: float = 0.0  # chance a session's first reading is an alerting reaction
    white_coat_mmhg: float = 15.0
    trend_mmhg_per_day: float = 0.0  # slow change of the systolic (diastolic at 0.6 x)
    trend_start_day: int = 0
    crisis_days: tuple[int, ...] = ()  # days with a >= 180/120 session (then re-measured)
    irregular_pulse_prob: float = 0.0
    body_movement_prob: float = 0.02
    sessions_per_day: int = 2  # 1 = morning only, 2 = morning and evening
    readings_per_session: int = 2

    def __post_init__(self) -> None:
        if not 60 <= self.systolic_mmhg <= 260:
            raise ScenarioError("blood_pressure.systolic_mmhg", "must be 60..260")
        if not 30 <= self.diastolic_mmhg < self.systolic_mmhg:
            raise ScenarioError("blood_pressure.diastolic_mmhg", "must be 30..systolic")
        if self.sessions_per_day not in (1, 2):
            raise ScenarioError("blood_pressure.sessions_per_day", "must be 1 or 2")
        if not 1 <= self.readings_per_session <= 3:
            raise ScenarioError("blood_pressure.readings_per_session", "must be 1..3")


@dataclass(frozen=True, slots=True)
class BloodPressureSample:
    """One planned cuff cycle."""

    at_utc: datetime
    systolic_mmhg: float
    diastolic_mmhg: float
    pulse_per_min: float
    irregular_pulse: bool
    body_movement: bool
    white_coat: bool = False


def circadian_factor(local_hour: float, dipping_pct: float) -> float:
    """Multiplier of the daytime mean: 1 by day, 1 - dipping at 03:00, smooth between."""
    # cosine trough centred at 03:00 spanning 23:00-07:00
    distance = min(abs(local_hour - 3.0), 24 - abs(local_hour - 3.0))
    if distance >= 4.0:
        return 1.0
    return 1.0 - dipping_pct / 100.0 * 0.5 * (1 + math.cos(math.pi * distance / 4.0))


def _surge(local_hour: float, surge_mmhg: float) -> float:
    # morning surge peaking about 1.5 h after waking at 06:30
    if not 6.0 <= local_hour <= 11.0:
        return 0.0
    return surge_mmhg * math.sin(math.pi * (local_hour - 6.0) / 5.0)


def plan_blood_pressure(
    params: BloodPressureParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
) -> list[BloodPressureSample]:
    """Every cuff cycle of the period, in time order (reproducible for a seed)."""
    rng = random.Random(seed)  # noqa: S311 (seeded simulation, not crypto)
    p = params
    local_midnight = (start_utc + timedelta(minutes=utc_offset_min)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=None
    )
    sessions = [(7, 15), (20, 0)][: p.sessions_per_day]
    out: list[BloodPressureSample] = []
    for day in range(days):
        trend = p.trend_mmhg_per_day * max(0, day - p.trend_start_day)
        for hour, minute in sessions:
            start = local_midnight + timedelta(
                days=day, hours=hour, minutes=minute + rng.randint(-20, 20)
            )
            crisis = day in p.crisis_days and hour < 12
            for i in range(p.readings_per_session):
                local = start + timedelta(minutes=i)
                h = local.hour + local.minute / 60
                factor = circadian_factor(h, p.dipping_pct)
                systolic = (p.systolic_mmhg + trend) * factor + _surge(h, p.morning_surge_mmhg)
                diastolic = (p.diastolic_mmhg + 0.6 * trend) * factor + 0.5 * _surge(
                    h, p.morning_surge_mmhg
                )
                white_coat = i == 0 and rng.random() < p.white_coat_prob
                if white_coat:
                    systolic += p.white_coat_mmhg
                    diastolic += p.white_coat_mmhg / 2
                if crisis:
                    systolic, diastolic = max(systolic, 186.0), max(diastolic, 122.0)
                systolic += rng.gauss(0.0, p.noise_sd_mmhg)
                diastolic += rng.gauss(0.0, p.noise_sd_mmhg * 0.7)
                if crisis:
                    systolic, diastolic = max(systolic, 182.0), max(diastolic, 121.0)
                pulse = p.pulse_per_min + rng.gauss(0.0, 4.0)
                at_utc = (local - timedelta(minutes=utc_offset_min)).replace(
                    tzinfo=start_utc.tzinfo
                )
                if at_utc < start_utc:
                    continue
                out.append(
                    BloodPressureSample(
                        at_utc,
                        round(systolic),
                        round(min(diastolic, systolic - 10)),
                        round(pulse),
                        rng.random() < p.irregular_pulse_prob,
                        rng.random() < p.body_movement_prob,
                        white_coat,
                    )
                )
    return out
