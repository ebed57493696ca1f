"""Run a scenario on the virtual air: build its devices, power them on, and make each reading
when simulated time reaches it (simulated time = start + elapsed real time x acceleration).

The devices' own clocks follow simulated time, so a week at 86,400x takes seven seconds and the
records carry the scenario's dates.
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
from firmware_sims.models import DeviceKind
from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.scenario import Scenario

logger = logging.getLogger(__name__)

MEALS = {
    "fasting": Meal.FASTING,
    "preprandial": Meal.PREPRANDIAL,
    "postprandial": Meal.POSTPRANDIAL,
    "bedtime": Meal.BEDTIME,
    "casual": Meal.CASUAL,
}
SimDevice = GlucoseMeter | BloodPressureCuff | ContinuousGlucoseMonitor


@dataclass
class ScenarioRun:
    """One scenario's devices on an air, and the clock that drives them."""

    scenario: Scenario
    air: Air
    advertising_interval_ms: float = 100.0
    devices: list[SimDevice] = field(default_factory=list)
    readings_made: int = 0
    _t0: float | None = None
    _loop_time: Callable[[], float] | None = None

    def sim_now(self) -> datetime:
        """Simulated UTC time (the scenario start until `start()`)."""
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
            device: SimDevice
            if spec.model.kind is DeviceKind.CGM:
                device = cgm_for(s, index, self.air)
            elif spec.glucose is not None:
                device = GlucoseMeter(self.air, spec.model, **kwargs)  # type: ignore[arg-type]
            else:
                device = BloodPressureCuff(self.air, spec.model, **kwargs)  # type: ignore[arg-type]
            await device.power_on()
            self.devices.append(device)
            logger.info("%s: %s on the air as %s", spec.serial, spec.model.key, spec.address)

    def timeline(self) -> list[tuple[datetime, int, GlucoseSample | BloodPressureSample]]:
        """Every planned reading of every device, in time order."""
        events: list[tuple[datetime, int, GlucoseSample | BloodPressureSample]] = []
        for index in range(len(self.scenario.devices)):
            events += [(sample.at_utc, index, sample) for sample in self.scenario.plan(index)]
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    async def run(self) -> int:
        """Make every reading at its simulated time; returns how many were made."""
        if self._t0 is None:
            await self.start()
        for at_utc, index, sample in self.timeline():
            wait_s = (at_utc - self.sim_now()).total_seconds() / self.scenario.time_acceleration
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            await self.make(index, sample)
        return self.readings_made

    async def make(self, index: int, sample: GlucoseSample | BloodPressureSample) -> None:
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
        self.readings_made += 1


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
