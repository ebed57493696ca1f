"""Seeded body temperature and body weight for thermometers and scales (pure).

Figures and their sources:
- Body temperature: mean oral temperature of healthy adults about 36.8 C with a circadian
  swing of roughly +-0.5 C, lowest in the early morning and highest in the late afternoon
  (Mackowiak et al., JAMA 1992;268:1578). Fever: >= 38.0 C (the threshold the rules use; IDSA
  guideline for fever in older adults, Clin Infect Dis 2009;48:149, uses >= 37.8 C oral).
- Body weight: day-to-day fluctuation SD about 0.3-0.5 kg; in heart failure, a gain of more
  than 2 kg in 3 days signals fluid retention (ESC heart failure guideline 2021, patient
  self-care section). A `retention_days` episode adds `retention_kg` spread over three days.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from firmware_sims.errors import ScenarioError


@dataclass(frozen=True, slots=True)
class TemperatureParams:
    """A patient's body temperature (Celsius) and fever episodes (day numbers)."""

    baseline_c: float = 36.8
    circadian_c: float = 0.4
    fever_days: tuple[int, ...] = ()
    fever_peak_c: float = 39.0
    noise_sd_c: float = 0.1

    def __post_init__(self) -> None:
        if not 34.0 <= self.baseline_c <= 38.0 or not 36.0 <= self.fever_peak_c <= 42.0:
            raise ScenarioError("temperature.baseline_c", "baseline 34..38 C, peak 36..42 C")


@dataclass(frozen=True, slots=True)
class WeightParams:
    """A patient's body weight (kg), a slow trend and fluid-retention episodes."""

    baseline_kg: float = 78.0
    trend_kg_per_day: float = 0.0
    noise_sd_kg: float = 0.3
    retention_days: tuple[int, ...] = ()  # first day of a 3-day fluid gain
    retention_kg: float = 2.5

    def __post_init__(self) -> None:
        if not 20.0 <= self.baseline_kg <= 300.0:
            raise ScenarioError("weight.baseline_kg", "must be 20..300 kg")


class VitalsModel:
    """Temperature and weight over days for one patient (seeded, reproducible)."""

    def __init__(self, temperature: TemperatureParams, weight: WeightParams, seed: int = 0) -> None:
        self.temperature = temperature
        self.weight = weight
        self._rng = random.Random(seed)  # noqa: S311 - physiology, not security

    def temperature_c(self, day: int, local_hour: float) -> float:
        """Body temperature at a local time: circadian swing (peak about 17 h), plus a fever
        that day (rising to the peak by the afternoon), plus measurement noise."""
        p = self.temperature
        swing = p.circadian_c * math.sin((local_hour - 11.0) / 24.0 * 2 * math.pi)
        fever = 0.0
        if day in p.fever_days:
            fever = (p.fever_peak_c - p.baseline_c) * min(1.0, max(0.3, local_hour / 16.0))
        return round(p.baseline_c + swing + fever + self._rng.gauss(0, p.noise_sd_c), 1)

    def weight_kg(self, day: int) -> float:
        """Morning weight on `day`: baseline, trend, retention gains, noise (to 0.1 kg)."""
        p = self.weight
        gained = sum(
            p.retention_kg * min(1.0, max(0.0, (day - start) / 3.0)) for start in p.retention_days
        )
        value = p.baseline_kg + p.trend_kg_per_day * day + gained
        return round(value + self._rng.gauss(0, p.noise_sd_kg), 1)
