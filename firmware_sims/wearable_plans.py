"""What a scenario's wearables record, planned ahead like the meters' readings (pure).

- A **CGM** records a reading every `interval_min` after its warm-up until the sensor expires
  (`CgmTrace`, which the simulated sensor uses too, so a plan equals what the sensor holds).
- A **strap** or an **oximeter** streams once a second while worn; the hub reduces the stream
  to one summary per minute (mean, lowest, highest, sample count). A strap keeps no history,
  so its plan is the minutes the hub would publish while it is worn (`stream_hours`, local) and
  a hub is listening: what an engine replay evaluates. An oximeter also stores **spot-checks**
  (taken at `reading_hours`, and again 10 minutes later when one reads below 92 %), which a
  hub back-fills over the RACP.
- A **thermometer** stores a reading at each of `reading_hours` (local), a **scale** a weight at
  the first of them, every day (fever curves and fluid-retention trends from
  `physiology_vitals`).

Stream clocks: a strap's and an oximeter's physiology windows (`exercise_windows_s`,
`rest_episodes_s`, `desaturations_s`) count seconds from the scenario start.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from firmware_sims.errors import ScenarioError
from firmware_sims.physiology_glucose import GlucoseModel, GlucoseParams
from firmware_sims.physiology_hr import HeartRateModel, HeartRateParams
from firmware_sims.physiology_vitals import TemperatureParams, VitalsModel, WeightParams

SENSOR_SD = 0.07  # CGM sensor error SD (MARD of current sensors about 9 %: cgm_sensor)
# A patient whose spot-check reads low measures again a little later, as home-oximetry
# instructions ask (a single low reading may be a cold finger or movement).
RECHECK_BELOW_PCT = 92.0
RECHECK_AFTER = timedelta(minutes=10)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SpO2Params:
    """A wearer's oxygen saturation (%) and desaturation episodes (seconds from the start)."""

    baseline_pct: float = 97.0
    noise_sd_pct: float = 0.7
    desaturations_s: tuple[tuple[float, float, float], ...] = ()  # (start, end, nadir %)

    def __post_init__(self) -> None:
        if not 70 <= self.baseline_pct <= 100:
            raise ScenarioError("spo2.baseline_pct", "must be 70..100")


def spo2_pct(params: SpO2Params, t_s: float, rng: random.Random) -> float:
    """SpO2 at `t_s` (a desaturation is a triangle to its nadir), with measurement noise."""
    level = params.baseline_pct
    for start, end, nadir in params.desaturations_s:
        if start <= t_s < end:
            half = (end - start) / 2
            depth = 1 - abs(t_s - start - half) / half
            level = min(level, params.baseline_pct - (params.baseline_pct - nadir) * depth)
    return max(50.0, min(100.0, level + rng.gauss(0, params.noise_sd_pct)))


class CgmTrace:
    """The glucose a CGM senses at each minute offset of its session (seeded): the meters'
    trace (local time of day, days counted from the session's start) through the sensor error,
    clamped to the 40-400 mg/dL a CGM reports. Ask for offsets in increasing order."""

    def __init__(
        self, glucose: GlucoseParams, seed: int, session_start_utc: datetime, utc_offset_min: int
    ) -> None:
        self.model = GlucoseModel(glucose, seed=seed)
        self._rng = random.Random(seed + 1)  # noqa: S311 - physiology, not security
        self.session_start_utc = session_start_utc
        self.utc_offset_min = utc_offset_min

    def sensed_mg_dl(self, offset_min: int) -> float:
        """The sensor's reading `offset_min` minutes into the session."""
        moment = self.session_start_utc + timedelta(minutes=offset_min + self.utc_offset_min)
        day = (moment.date() - self.session_start_utc.date()).days
        true = self.model.true_mg_dl(day, moment.hour + moment.minute / 60)
        return max(40.0, min(400.0, true * (1 + self._rng.gauss(0, SENSOR_SD))))


@dataclass(frozen=True, slots=True)
class CgmSample:
    """A CGM reading as the sensor records it (whole mg/dL)."""

    at_utc: datetime
    glucose_mg_dl: float
    offset_min: int


@dataclass(frozen=True, slots=True)
class HeartRateMinute:
    """One minute of a strap's stream, summarized as the hub does."""

    at_utc: datetime
    mean_bpm: float
    lowest_bpm: float
    highest_bpm: float
    samples: int


@dataclass(frozen=True, slots=True)
class Spo2Minute:
    """One minute of an oximeter's continuous stream, summarized as the hub does."""

    at_utc: datetime
    spo2_pct: float
    lowest_pct: float
    highest_pct: float
    pulse_per_min: float
    samples: int


@dataclass(frozen=True, slots=True)
class Spo2SpotCheck:
    """A stored spot-check (whole % and /min, as PLX sends them)."""

    at_utc: datetime
    spo2_pct: float
    pulse_per_min: float


@dataclass(frozen=True, slots=True)
class TemperatureSample:
    """A thermometer reading (0.1 C)."""

    at_utc: datetime
    temperature_c: float


@dataclass(frozen=True, slots=True)
class WeightSample:
    """A scale reading (0.1 kg)."""

    at_utc: datetime
    weight_kg: float


WearableSample = (
    CgmSample | HeartRateMinute | Spo2Minute | Spo2SpotCheck | TemperatureSample | WeightSample
)


def plan_cgm(
    glucose: GlucoseParams,
    *,
    seed: int,
    session_start_utc: datetime,
    end_utc: datetime,
    utc_offset_min: int,
    interval_min: int = 5,
    warmup_min: int = 60,
    lifetime_days: float = 14.0,
) -> list[CgmSample]:
    """The readings a CGM started at `session_start_utc` holds at `end_utc`."""
    trace = CgmTrace(glucose, seed, session_start_utc, utc_offset_min)
    last = min(int((end_utc - session_start_utc).total_seconds() // 60), int(lifetime_days * 1440))
    return [
        CgmSample(session_start_utc + timedelta(minutes=k), round(trace.sensed_mg_dl(k)), k)
        for k in range(warmup_min, last + 1, interval_min)
    ]


def _worn_minutes(
    start_utc: datetime, days: int, utc_offset_min: int, hours: tuple[int, int]
) -> list[datetime]:
    """Every whole UTC minute in the local window `hours` (from, to; wrapping past midnight)
    over the scenario's days."""
    out = []
    first = start_utc.replace(second=0, microsecond=0)
    for k in range(days * 1440):
        at = first + k * MINUTE
        local = at + timedelta(minutes=utc_offset_min)
        h = local.hour
        lo, hi = hours
        if (lo <= h < hi) if lo <= hi else (h >= lo or h < hi):
            out.append(at)
    return out


def plan_heart_rate(
    params: HeartRateParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
    stream_hours: tuple[int, int],
) -> list[HeartRateMinute]:
    """The per-minute summaries of a strap worn during `stream_hours` every day."""
    model = HeartRateModel(params, seed)
    rng = random.Random(seed + 3)  # noqa: S311 - physiology, not security
    out = []
    for at in _worn_minutes(start_utc, days, utc_offset_min, stream_hours):
        t_s = (at - start_utc).total_seconds() + 30
        rate = model.bpm(t_s)
        spread = abs(rng.gauss(0, 2.0))
        mean = round(rate + rng.gauss(0, 0.8), 1)
        low, high = round(mean - 1 - spread), round(mean + 1 + spread)
        out.append(HeartRateMinute(at, mean, low, high, 60))
    return out


def plan_oximeter(
    spo2: SpO2Params,
    pulse: HeartRateParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
    stream_hours: tuple[int, int] | None,
    reading_hours: tuple[int, ...],
) -> list[Spo2Minute | Spo2SpotCheck]:
    """An oximeter's minute summaries (while worn) and stored spot-checks, in time order."""
    heart = HeartRateModel(pulse, seed)
    rng = random.Random(seed + 7)  # noqa: S311 - physiology, not security
    out: list[Spo2Minute | Spo2SpotCheck] = []
    minutes = _worn_minutes(start_utc, days, utc_offset_min, stream_hours) if stream_hours else []
    for at in minutes:
        t_s = (at - start_utc).total_seconds()
        values = [spo2_pct(spo2, t_s + s, rng) for s in (10, 30, 50)]
        mean = round(math.fsum(values) / len(values), 1)
        out.append(Spo2Minute(at, mean, round(min(values)), round(max(values)),
                              round(heart.bpm(t_s + 30)), 60))  # fmt: skip
    for day in range(days):
        for hour in reading_hours:
            at = _local(start_utc, day, hour, utc_offset_min)
            t_s = (at - start_utc).total_seconds()
            value = round(spo2_pct(spo2, t_s, rng))
            out.append(Spo2SpotCheck(at, value, round(heart.bpm(t_s))))
            if value < RECHECK_BELOW_PCT:
                again = at + RECHECK_AFTER
                t_again = (again - start_utc).total_seconds()
                value = round(spo2_pct(spo2, t_again, rng))
                out.append(Spo2SpotCheck(again, value, round(heart.bpm(t_again))))
    out.sort(key=lambda s: s.at_utc)
    return out


def _local(start_utc: datetime, day: int, hour: int, utc_offset_min: int) -> datetime:
    """The UTC moment of local `hour` on scenario day `day` (a few minutes past the hour)."""
    local_midnight = (start_utc + timedelta(minutes=utc_offset_min)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return local_midnight + timedelta(days=day, hours=hour, minutes=5 - utc_offset_min)


def plan_temperature(
    params: TemperatureParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
    reading_hours: tuple[int, ...],
) -> list[TemperatureSample]:
    """A thermometer reading at each local hour of `reading_hours`, every day."""
    model = VitalsModel(params, WeightParams(), seed)
    return [
        TemperatureSample(
            _local(start_utc, day, hour, utc_offset_min), model.temperature_c(day, hour + 0.1)
        )
        for day in range(days)
        for hour in reading_hours
    ]


def plan_weight(
    params: WeightParams,
    *,
    seed: int,
    start_utc: datetime,
    days: int,
    utc_offset_min: int,
    hour: int,
) -> list[WeightSample]:
    """A morning weight at local `hour` every day."""
    model = VitalsModel(TemperatureParams(), params, seed)
    return [
        WeightSample(_local(start_utc, day, hour, utc_offset_min), model.weight_kg(day))
        for day in range(days)
    ]
