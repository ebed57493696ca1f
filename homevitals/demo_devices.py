"""The demo's home: a scenario's simulated devices on the virtual air, holding the scenario's
readings as generated history (meters, cuffs, a CGM's trace, thermometers, scales, oximeters'
spot-checks; straps and oximeters also stream live), and the care plan the scenario's alerts
assume.

The rules engine evaluates at the wall clock (`homevitals alerts run`), so the scenario is moved
by whole days to end before today's "now": the devices then hold what the patient measured over
the last days (time of day and physiology unchanged), and the gateway back-fills it when it
pairs them, which is what happens when a patient comes home from hospital with a meter full of
readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.models import DeviceKind
from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.runner import MEALS, SimDevice, device_for, make_wearable_reading
from firmware_sims.scenario import Scenario
from firmware_sims.wearable_plans import HeartRateMinute, Spo2Minute

# The care plan the shipped scenarios are written against (tests/alerts/engine/test_scenarios.py):
# the traditional 135/85 home threshold on `bp.home_aha_ama_2020`, and the patient's UTC offset
# for the protocols that pick morning and evening readings.
STAGE2_HOME = {
    "systolic_mmhg": 135.0,
    "diastolic_mmhg": 85.0,
    "clear_systolic_mmhg": 132.0,
    "clear_diastolic_mmhg": 83.0,
}
LOCAL_TIME_RULES = ("bp.home_esh_7d", "bp.home_china_2019", "bp.home_aha_ama_2020")


def rebased(scenario: Scenario, now: datetime) -> Scenario:
    """`scenario` moved by whole days so that its last planned reading is before `now`.

    Raises:
        ValueError: `now` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now: must be an aware UTC datetime")
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for days_back in (scenario.days - 1, scenario.days):
        moved = replace(scenario, start_utc=midnight - timedelta(days=days_back))
        if _last_reading(moved) < now - timedelta(minutes=1):
            return moved
    return replace(scenario, start_utc=midnight - timedelta(days=scenario.days + 1))


def _last_reading(scenario: Scenario) -> datetime:
    return max(
        (
            s.at_utc
            for i in range(len(scenario.devices))
            for s in scenario.plan(i)
            if not isinstance(s, HeartRateMinute | Spo2Minute)  # streamed live, not history
        ),
        default=scenario.start_utc,
    )


CarePlanFile = dict[str, dict[str, object]]


def care_plan(scenario: Scenario) -> CarePlanFile:
    """The care plan the scenario's expected alerts assume (`alerts.engine.care_plan` format):
    per-rule overrides, and the patient's conditions."""
    offset = float(scenario.utc_offset_min)
    rules: dict[str, dict[str, float]] = {
        rule: {"utc_offset_min": offset} for rule in LOCAL_TIME_RULES
    }
    rules["bp.home_aha_ama_2020"].update(STAGE2_HOME)
    plan: dict[str, object] = dict(rules)
    if scenario.conditions:
        plan["conditions"] = list(scenario.conditions)
    return {scenario.patient_id: plan}


def gateway_timezone(utc_offset_min: int) -> str:
    """An IANA zone with the patient's fixed UTC offset (whole hours), else UTC."""
    if utc_offset_min % 60 or not utc_offset_min:
        return "UTC"
    hours = utc_offset_min // 60
    return f"Etc/GMT{-hours:+d}"  # POSIX sign convention: Etc/GMT-1 is UTC+1


@dataclass
class Home:
    """A patient's devices on the air, with what the demo expects of them.

    Attributes:
        patient_id: whom the gateway pairs the devices to.
        devices: the simulated meters and cuffs (powered on, memories filled).
        passkeys: per upper-case address, the passkey the device shows (passkey models only).
        expected: rule id -> how many `alert.opened` webhooks must arrive at least.
        care_plan: per-patient rule overrides for the engine.
        utc_offset_min: the home's UTC offset (the gateway's time zone).
    """

    patient_id: str
    devices: list[SimDevice]
    passkeys: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    care_plan: CarePlanFile = field(default_factory=dict)
    utc_offset_min: int = 0

    @staticmethod
    def held_by(device: SimDevice) -> int:
        """Records in one device's memory (a strap keeps none)."""
        if isinstance(device, GlucoseMeter | ContinuousGlucoseMonitor | PulseOximeter):
            return len(device.racp.records)
        if isinstance(device, HeartRateStrap):
            return 0
        return len(device.memory)

    @property
    def readings_held(self) -> int:
        """Records in the devices' memories (what the gateway must fetch)."""
        return sum(self.held_by(d) for d in self.devices)


async def build_home(scenario: Scenario, air: VirtualAir) -> Home:
    """Create the scenario's devices on `air`, fill their memories with the planned readings
    (history), and power them on.

    Raises:
        FirmwareSimsError: a device cannot be created or a reading cannot be stored.
        EncodeError: a planned value cannot be encoded by the device's firmware.
    """
    devices: list[SimDevice] = []
    for index, spec in enumerate(scenario.devices):
        common = {
            "serial": spec.serial,
            "address": spec.address,
            "utc_offset_min": scenario.utc_offset_min,
            "faults": spec.faults,
            "passkey": spec.passkey,
        }
        kind = spec.model.kind
        if kind is DeviceKind.CGM:
            cgm = device_for(scenario, index, air, common)
            assert isinstance(cgm, ContinuousGlucoseMonitor)
            cgm.advance_to(scenario.start_utc + timedelta(days=scenario.days))
            devices.append(cgm)
        elif kind not in (DeviceKind.GLUCOSE_METER, DeviceKind.BP_CUFF):
            wearable = device_for(scenario, index, air, common)
            for planned in scenario.plan(index):
                make_wearable_reading(wearable, planned)
            devices.append(wearable)
        elif spec.glucose is not None:
            meter = GlucoseMeter(air, spec.model, **common)  # type: ignore[arg-type]
            for sample in scenario.plan(index):
                assert isinstance(sample, GlucoseSample)
                meter.take_reading(
                    sample.meter_mg_dl,
                    meal=MEALS.get(sample.meal),
                    control_solution=sample.control_solution,
                    at_utc=sample.at_utc,
                )
            devices.append(meter)
        else:
            cuff = BloodPressureCuff(air, spec.model, **common)  # type: ignore[arg-type]
            for sample in scenario.plan(index):
                assert isinstance(sample, BloodPressureSample)
                cuff.store(
                    cuff.encode(
                        systolic_mmhg=sample.systolic_mmhg,
                        diastolic_mmhg=sample.diastolic_mmhg,
                        pulse_per_min=sample.pulse_per_min,
                        user_id=1,
                        body_movement=sample.body_movement,
                        irregular_pulse=sample.irregular_pulse,
                        time_stamp=cuff.clock.now(sample.at_utc),
                    )
                )
            devices.append(cuff)
    for device in devices:
        await device.power_on()
    return Home(
        patient_id=scenario.patient_id,
        devices=devices,
        passkeys={
            spec.address.upper(): spec.passkey
            for spec in scenario.devices
            if spec.model.security == "passkey"
        },
        expected={e.rule: e.min_count for e in scenario.expected_alerts},
        care_plan=care_plan(scenario),
        utc_offset_min=scenario.utc_offset_min,
    )
