"""Seeded heart-rate physiology for straps and watches: rest, exercise, RR intervals (pure).

Figures and their sources:
- Resting heart rate of adults 60-100 /min, tachycardia above 100 and bradycardia below 60 at
  rest (AHA, "All About Heart Rate (Pulse)"); the model's rest default is 68 /min.
- Beat-to-beat variability at rest: RMSSD of a few tens of ms in healthy adults (Task Force of
  the ESC and NASPE, Circulation 1996;93:1043, "Heart rate variability: standards of
  measurement"); modelled as Gaussian jitter of the RR interval with SD `rr_jitter_s`.
- Exercise: heart rate rises towards its target with a time constant of tens of seconds and
  recovers likewise (Pierpont & Voth, Am J Cardiol 2004;94:64 on heart-rate recovery).
- Episodes at rest (`rest_episodes_s`: start, end, rate): the resting rate changes for a while
  (an arrhythmia, a fever, heart failure decompensating), approached the same way.
RR intervals are in 1/1024 s as Heart Rate Measurement carries them (HRS 1.0).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from firmware_sims.errors import ScenarioError


@dataclass(frozen=True, slots=True)
class HeartRateParams:
    """A wearer's heart rate (beats per minute) and when they exercise (seconds from start)."""

    resting_bpm: float = 68.0
    exercise_bpm: float = 140.0
    exercise_windows_s: tuple[tuple[float, float], ...] = ()  # (start, end) pairs
    rest_episodes_s: tuple[tuple[float, float, float], ...] = ()  # (start, end, bpm) at rest
    time_constant_s: float = 30.0
    rr_jitter_s: float = 0.03

    def __post_init__(self) -> None:
        if not 25 <= self.resting_bpm <= 220 or not 25 <= self.exercise_bpm <= 220:
            raise ScenarioError("heart_rate.resting_bpm", "heart rates must be 25..220 /min")
        if self.time_constant_s <= 0 or self.rr_jitter_s < 0:
            raise ScenarioError("heart_rate.time_constant_s", "must be > 0 (jitter >= 0)")
        for window in (*self.exercise_windows_s, *self.rest_episodes_s):
            if len(window) not in (2, 3) or window[0] >= window[1]:
                raise ScenarioError("heart_rate.windows", "each window is [start_s, end_s(, bpm)]")
        if any(not 25 <= e[2] <= 220 for e in self.rest_episodes_s):
            raise ScenarioError("heart_rate.rest_episodes_s", "heart rates must be 25..220 /min")


class HeartRateModel:
    """Heart rate and RR intervals over time for one wearer (seeded, reproducible)."""

    def __init__(self, params: HeartRateParams, seed: int = 0) -> None:
        self.params = params
        self._rng = random.Random(seed)  # noqa: S311 - physiology, not security

    def target_bpm(self, t_s: float) -> float:
        """The rate the heart is heading for at `t_s`."""
        p = self.params
        if any(a <= t_s < b for a, b in p.exercise_windows_s):
            return p.exercise_bpm
        for start, end, rate in p.rest_episodes_s:
            if start <= t_s < end:
                return rate
        return p.resting_bpm

    def bpm(self, t_s: float) -> float:
        """The rate at `t_s`: the target, approached exponentially since the last change."""
        p = self.params
        edges = (*(x for w in p.exercise_windows_s for x in w),
                 *(x for w in p.rest_episodes_s for x in w[:2]))  # fmt: skip
        changes = sorted({0.0, *(x for x in edges if x <= t_s)})
        level = p.resting_bpm
        for start, end in zip(changes, [*changes[1:], t_s], strict=True):
            target = self.target_bpm(start)
            level = target + (level - target) * math.exp(-(end - start) / p.time_constant_s)
        return level

    def beat(self, t_s: float) -> tuple[int, tuple[int, ...]]:
        """A notification's content at `t_s`: heart rate (/min) and this second's RR intervals
        (1/1024 s), as a strap that sends once a second would."""
        rate = self.bpm(t_s)
        mean_rr = 60.0 / rate
        intervals: list[int] = []
        elapsed = 0.0
        while elapsed < 1.0:
            rr = max(0.25, self._rng.gauss(mean_rr, self.params.rr_jitter_s))
            intervals.append(round(rr * 1024))
            elapsed += rr
        return round(rate), tuple(intervals)
