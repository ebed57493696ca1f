"""The demo's homes: a patient's simulated devices on the virtual air (meters and cuffs, Li Mei's
scale; a scenario may bring a CGM, a thermometer, a scale, an oximeter or a strap too), the
readings they will take as the story's clock runs, the care plan the scenario's alerts assume, and
what each meter, cuff, scale and thermometer holds (for the self-check).

A scenario is moved by whole days so that its last planned reading is before today's "now"
(`rebased`); the story then starts at its first day with empty devices, and the devices measure
at the scenario's times as the accelerated clock (`homevitals.demo_clock`) passes them: two
weeks at home in a couple of minutes, ending at today.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from devices.codecs.date_time import device_time_text
from devices.codecs.temperature_measurement import TemperatureMeasurement
from devices.codecs.weight_measurement import WeightMeasurement
from devices.reading import Kind, device_id_for, reading_id_for
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.cgm_sensor import ContinuousGlucoseMonitor
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.heart_rate_strap import HeartRateStrap
from firmware_sims.pulse_oximeter import PulseOximeter
from firmware_sims.runner import ScenarioRun, SimDevice
from firmware_sims.scenario import Scenario
from firmware_sims.vitals_devices import Thermometer, WeightScale
from firmware_sims.wearable_plans import HeartRateMinute, Spo2Minute
from homevitals.demo_ledger import DeviceRecord
from homevitals.demo_story import PatientStory, fixed_offset_zone, patient_for

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


@dataclass
class Home:
    """A patient's devices on the air, with what the demo expects of them.

    Attributes:
        patient_id: whom the hub pairs the devices to.
        devices: the simulated devices (powered on).
        passkeys: per upper-case address, the passkey the device shows (passkey models only).
        expected: rule id -> how many `alert.opened` webhooks must arrive at least.
        care_plan: per-patient rule overrides for the engine.
        utc_offset_min: the home's UTC offset.
        patient: who the patient is (None: a demo patient made from the id).
        player: the scenario that makes the readings as the clock runs (None: the devices hold
            everything already).
    """

    patient_id: str
    devices: list[SimDevice]
    passkeys: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    care_plan: CarePlanFile = field(default_factory=dict)
    utc_offset_min: int = 0
    patient: PatientStory | None = None
    player: ScenarioRun | None = None

    @property
    def story(self) -> PatientStory:
        """The patient as the record registers them."""
        if self.patient is not None:
            return self.patient
        conditions = []
        if any(isinstance(d, GlucoseMeter) for d in self.devices):
            conditions.append("diabetes")
        if any(isinstance(d, BloodPressureCuff) for d in self.devices):
            conditions.append("hypertension")
        return PatientStory(
            self.patient_id,
            f"Demo patient {self.patient_id}",
            fixed_offset_zone(self.utc_offset_min),
            tuple(conditions),
        )

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
        """Records in the devices' memories."""
        return sum(self.held_by(d) for d in self.devices)

    @property
    def readings_planned(self) -> int:
        """Readings the devices will have taken at the end of the story."""
        if self.player is None:
            return self.readings_held
        return len(self.player.timeline())


async def build_home(
    scenario: Scenario, air: VirtualAir, clock: Callable[[], datetime], speed: float
) -> Home:
    """The scenario's devices on `air`, empty and powered on, on the story's clock; the
    returned home's `player` takes the scenario's readings as the clock passes them.

    Raises:
        FirmwareSimsError: a device cannot be created.
    """
    player = ScenarioRun(replace(scenario, time_acceleration=speed), air, clock=clock)
    await player.start()
    return Home(
        patient_id=scenario.patient_id,
        devices=list(player.devices),
        passkeys={
            spec.address.upper(): spec.passkey
            for spec in scenario.devices
            if spec.model.security == "passkey"
        },
        expected={e.rule: e.min_count for e in scenario.expected_alerts},
        care_plan=care_plan(scenario),
        utc_offset_min=scenario.utc_offset_min,
        patient=patient_for(scenario),
        player=player,
    )


def device_label(device: SimDevice) -> str:
    """How a person names a device: its model and the last digits of its serial."""
    serial = device.identity.serial or ""
    return f"{device.model.model.removesuffix(' (simulated)')} ...{serial[-4:]}"


def followed(device: SimDevice) -> bool:
    """Whether the self-check follows the device's records: meters, cuffs, scales,
    thermometers and oximeters' stored spot-checks (what they hold, and whether a host
    confirmed it); a CGM's readings and the minute summaries of a strap's or an oximeter's
    stream are counted in the progress table and checked by their own tests."""
    return isinstance(
        device, GlucoseMeter | BloodPressureCuff | WeightScale | Thermometer | PulseOximeter
    )


def device_records(device: SimDevice) -> list[DeviceRecord]:
    """Every record in a meter's or cuff's memory, with the reading id the hub must give it
    (from its Device Information, kind, sequence number and raw device time, as `devices`
    derives it); none for the kinds the self-check does not follow (`followed`)."""
    ident = device.identity
    device_id = device_id_for(
        manufacturer=ident.manufacturer,
        model=ident.model,
        serial=ident.serial,
        system_id=ident.system_id,
    )
    label = device_label(device)
    out: list[DeviceRecord] = []
    if not followed(device):
        return out
    if isinstance(device, GlucoseMeter):
        for record in device.racp.records:
            m = record.measurement
            ketone = record.context is not None and record.context.is_ketone
            rid = reading_id_for(
                device_id=device_id,
                kind=Kind.KETONE if ketone else Kind.GLUCOSE,
                sequence=m.sequence_number,
                device_time=device_time_text(m.base_time),
            )
            out.append(DeviceRecord(device_id, label, rid, m.sequence_number, bytes(m)))
        return out
    if isinstance(device, PulseOximeter):  # stored spot-checks, every one sent at each sync
        for spot in device.racp.records:
            rid = reading_id_for(
                device_id=device_id,
                kind=Kind.SPO2,
                sequence=None,
                device_time=device_time_text(spot.measurement.time_stamp),
            )
            sent = spot.index in device.delivered
            raw = bytes(spot.measurement)
            out.append(DeviceRecord(device_id, label, rid, None, raw, sent=sent))
        return out
    if isinstance(device, WeightScale | Thermometer):  # indicated, kept until confirmed
        kind = Kind.BODY_WEIGHT if isinstance(device, WeightScale) else Kind.BODY_TEMPERATURE
        codec = WeightMeasurement if isinstance(device, WeightScale) else TemperatureMeasurement
        for stored in device.memory:
            rid = reading_id_for(
                device_id=device_id,
                kind=kind,
                sequence=None,
                device_time=device_time_text(codec.from_bytes(stored.payload).time_stamp),
            )
            sent = stored.delivered
            out.append(DeviceRecord(device_id, label, rid, None, stored.payload, sent=sent))
        return out
    assert isinstance(device, BloodPressureCuff)
    for stored_bp in device.memory:
        bp = stored_bp.measurement
        rid = reading_id_for(
            device_id=device_id,
            kind=Kind.BLOOD_PRESSURE,
            sequence=None,
            device_time=device_time_text(bp.time_stamp),
        )
        out.append(DeviceRecord(device_id, label, rid, None, bytes(bp), sent=stored_bp.delivered))
    return out
