"""Run a scenario on the virtual air: build its devices, power them on, and make each reading
when simulated time reaches it (simulated time = start + elapsed real time x acceleration).

The devices' own clocks follow simulated time, so a week at 86,400x takes seven seconds and the
records carry the scenario's dates. Meters, cuffs, thermometers, scales and oximeters (their
spot-checks) make their planned readings; a CGM records its own trace as simulated time
passes; straps and oximeters stream live, in real time, from power-on (a stream has no history
to accelerate: its planned minutes are what a listening hub would summarize). A caller that
keeps its own simulated clock (the demo, whose hub and rules engine share it) passes it as
`clock`; the devices and the timeline follow it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devices.codecs import Meal
from firmware_sims.air import Air
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import DeviceKind
from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.scenario import PlannedSample, Scenario
from firmware_sims.vitals_devices import Thermometer, WeightScale
from firmware_sims.wearable_plans import (
    Spo2SpotCheck,
    TemperatureSample,
    WeightSample,
)

logger = logging.getLogger(__name__)

MEALS = {
    "fasting": Meal.FASTING,
    "preprandial": Meal.PREPRANDIAL,
    "postprandial": Meal.POSTPRANDIAL,
    "bedtime": Meal.BEDTIME,
    "casual": Meal.CASUAL,
}
SimDevice = (
    GlucoseMeter | BloodPressureCuff | ContinuousGlucoseMonitor | HeartRateStrap | PulseOximeter
    | Thermometer | WeightScale
)  # fmt: skip
# Planned samples a device makes when their time comes (the others it records or streams).
MadeSample = GlucoseSample | BloodPressureSample | Spo2SpotCheck | TemperatureSample | WeightSample
MAX_WAIT_S = 1.0  # re-read an outside clock at least this often (it may slow down)


@dataclass
class ScenarioRun:
    """One scenario's devices on an air, and the clock that drives them."""

    scenario: Scenario
    air: Air
    advertising_interval_ms: float = 100.0
    clock: Callable[[], datetime] | None = None
    devices: list[SimDevice] = field(default_factory=list)
    readings_made: int = 0
    _t0: float | None = None
    _loop_time: Callable[[], float] | None = None

    def sim_now(self) -> datetime:
        """Simulated UTC time (the scenario start until `start()`), or the outside `clock`."""
        if self.clock is not None:
            return self.clock()
        if self._t0 is None or self._loop_time is None:
            return self.scenario.start_utc
        elapsed = self._loop_time() - self._t0
        return self.scenario.start_utc + timedelta(
            seconds=elapsed * self.scenario.time_acceleration
        )

    async def start(self) -> None:
        """Create and power on every device of the scenario."""
        loop = asyncio.get_running_loop()
        self._loop_time = loop.time
        self._t0 = loop.time()
        s = self.scenario
        for index, spec in enumerate(s.devices):
            kwargs = {
                "serial": spec.serial,
                "address": spec.address,
                "utc_offset_min": s.utc_offset_min,
                "faults": spec.faults,
                "passkey": spec.passkey,
                "now": self.sim_now,
                "advertising_interval_ms": self.advertising_interval_ms,
            }
            device = device_for(s, index, self.air, kwargs)
            await device.power_on()
            self.devices.append(device)
            logger.info("%s: %s on the air as %s", spec.serial, spec.model.key, spec.address)

    def timeline(self) -> list[tuple[datetime, int, MadeSample]]:
        """Every planned reading a device makes, of every device, in time order."""
        events: list[tuple[datetime, int, MadeSample]] = []
        for index in range(len(self.scenario.devices)):
            events += [
                (sample.at_utc, index, sample)
                for sample in self.scenario.plan(index)
                if isinstance(sample, MadeSample)
            ]
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    async def run(self) -> int:
        """Make every reading at its simulated time; returns how many were made."""
        if self._t0 is None:
            await self.start()
        for at_utc, index, sample in self.timeline():
            while (ahead_s := (at_utc - self.sim_now()).total_seconds()) > 0:
                wait_s = ahead_s / self.scenario.time_acceleration
                await asyncio.sleep(wait_s if self.clock is None else min(wait_s, MAX_WAIT_S))
            await self.make(index, sample)
        return self.readings_made

    async def make(self, index: int, sample: MadeSample) -> None:
        """Make one planned reading on device `index` (CGMs record up to its time as well)."""
        for cgm in self.devices:
            if isinstance(cgm, ContinuousGlucoseMonitor):
                cgm.advance_to(sample.at_utc)
        device = self.devices[index]
        if isinstance(device, GlucoseMeter) and isinstance(sample, GlucoseSample):
            device.take_reading(
                sample.meter_mg_dl,
                meal=MEALS.get(sample.meal),
                control_solution=sample.control_solution,
                at_utc=sample.at_utc,
            )
        elif isinstance(device, BloodPressureCuff) and isinstance(sample, BloodPressureSample):
            await device.measure(
                sample.systolic_mmhg,
                sample.diastolic_mmhg,
                sample.pulse_per_min,
                body_movement=sample.body_movement,
                irregular_pulse=sample.irregular_pulse,
            )
        else:
            make_wearable_reading(device, sample)
        self.readings_made += 1


def make_wearable_reading(device: SimDevice, sample: PlannedSample) -> None:
    """Store one planned thermometer, scale or spot-check reading, taken at its time (a host
    that listens gets it at once; otherwise the device keeps it)."""
    if isinstance(device, Thermometer) and isinstance(sample, TemperatureSample):
        device.take(sample.temperature_c, at=sample.at_utc)
    elif isinstance(device, WeightScale) and isinstance(sample, WeightSample):
        device.weigh(sample.weight_kg, at=sample.at_utc)
    elif isinstance(device, PulseOximeter) and isinstance(sample, Spo2SpotCheck):
        device.spot_check(sample.spo2_pct, sample.pulse_per_min, at=sample.at_utc)


def device_for(scenario: Scenario, index: int, air: Air, common: dict[str, object]) -> SimDevice:
    """Device `index` of the scenario (not powered on), with the `common` settings (serial,
    address, UTC offset, faults, passkey, clock, advertising interval) each kind takes."""
    spec = scenario.devices[index]
    kind = spec.model.kind
    seed = scenario.seed * 1000 + index
    own = {k: v for k, v in common.items() if k in ("serial", "address", "faults", "passkey")}
    if kind is DeviceKind.CGM:
        return cgm_for(scenario, index, air)
    if kind is DeviceKind.GLUCOSE_METER:
        return GlucoseMeter(air, spec.model, **common)  # type: ignore[arg-type]
    if kind is DeviceKind.BP_CUFF:
        return BloodPressureCuff(air, spec.model, **common)  # type: ignore[arg-type]
    if kind is DeviceKind.HEART_RATE_STRAP:
        return HeartRateStrap(air, spec.model, physiology=spec.heart_rate, seed=seed, **own)  # type: ignore[arg-type]
    clocked = {**own, "utc_offset_min": scenario.utc_offset_min}
    if "now" in common:
        clocked["now"] = common["now"]
    if kind is DeviceKind.PULSE_OXIMETER:
        return PulseOximeter(air, spec.model, spo2=spec.spo2, pulse=spec.heart_rate, seed=seed,
                             **clocked)  # type: ignore[arg-type]  # fmt: skip
    if kind is DeviceKind.THERMOMETER:
        return Thermometer(air, spec.model, **clocked)  # type: ignore[arg-type]
    return WeightScale(air, spec.model, **clocked)  # type: ignore[arg-type]


def cgm_for(scenario: Scenario, index: int, air: Air) -> ContinuousGlucoseMonitor:
    """The scenario's CGM `index`: its sensor session starts with the scenario."""
    spec = scenario.devices[index]
    return ContinuousGlucoseMonitor(
        air,
        spec.model,
        serial=spec.serial,
        address=spec.address,
        session_start_utc=scenario.start_utc + timedelta(days=spec.sensor_start_day),
        utc_offset_min=scenario.utc_offset_min,
        glucose=spec.glucose,
        seed=scenario.seed * 1000 + index,
        faults=spec.faults,
        passkey=spec.passkey,
    )
