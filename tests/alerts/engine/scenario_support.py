"""The shipped firmware_sims scenarios as engine input: columns of their planned readings and
the care plan their declared alerts assume; `python -m tests.alerts.engine.scenario_support`
prints the webhooks each scenario pushes per patient-week (the README table)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np

from alerts.engine.evaluate import PatientProfile, Profiles
from alerts.engine.replay import replay_changes
from alerts.events import EventType
from alerts.rules.columns import KindCode, MealCode, ReadingColumns, build_columns
from devices.units import MG_DL_PER_MMOL_L
from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.scenario import PlannedSample, Scenario
from firmware_sims.scenario_files import load_scenario, shipped_scenarios
from firmware_sims.wearable_plans import (
    CgmSample,
    HeartRateMinute,
    Spo2Minute,
    Spo2SpotCheck,
    TemperatureSample,
    WeightSample,
)

STAGE2_HOME = {"systolic_mmhg": 135.0, "diastolic_mmhg": 85.0,
               "clear_systolic_mmhg": 132.0, "clear_diastolic_mmhg": 83.0}  # fmt: skip
MEALS = {m.name.lower(): m.value for m in MealCode}
HOUR_S = 3600


def columns(scenario: Scenario) -> ReadingColumns:
    """The readings the scenario's devices will hold (the simulators' own generator)."""
    rows: list[dict[str, object]] = []
    for index in range(len(scenario.devices)):
        for k, sample in enumerate(scenario.plan(index)):
            row: dict[str, object] = {"t": int(sample.at_utc.timestamp()), "ref": f"{index}-{k}"}
            row.update(_values(sample))
            rows.append(row)
    n = len(rows)
    return build_columns(
        [scenario.patient_id] * n, [r["t"] for r in rows], [r["kind"] for r in rows],  # type: ignore[misc]
        glucose_mmol_l=[r.get("g", np.nan) for r in rows],
        systolic_mmhg=[r.get("sys", np.nan) for r in rows],
        diastolic_mmhg=[r.get("dia", np.nan) for r in rows],
        meal=[r.get("meal", 0) for r in rows],
        control_solution=[r.get("control", False) for r in rows],
        bp_flagged=[r.get("flagged", False) for r in rows],
        reading_ref=[str(r["ref"]) for r in rows],
        pulse_per_min=[r.get("pulse", np.nan) for r in rows],
        heart_rate_per_min=[r.get("hr", np.nan) for r in rows],
        spo2_pct=[r.get("spo2", np.nan) for r in rows],
        body_temperature_c=[r.get("temp", np.nan) for r in rows],
        body_weight_kg=[r.get("kg", np.nan) for r in rows],
    )  # fmt: skip


def _values(sample: PlannedSample) -> dict[str, object]:
    """A planned sample's kind and values, as the hub would send them."""
    match sample:
        case GlucoseSample():
            return {
                "kind": KindCode.GLUCOSE,
                "g": sample.meter_mg_dl / MG_DL_PER_MMOL_L,
                "meal": MEALS.get(sample.meal, 0),
                "control": sample.control_solution,
            }
        case BloodPressureSample():
            return {
                "kind": KindCode.BLOOD_PRESSURE,
                "sys": sample.systolic_mmhg,
                "dia": sample.diastolic_mmhg,
                "flagged": sample.body_movement,
            }
        case CgmSample():
            return {"kind": KindCode.CGM_GLUCOSE, "g": sample.glucose_mg_dl / MG_DL_PER_MMOL_L}
        case HeartRateMinute():
            return {"kind": KindCode.HEART_RATE, "hr": sample.mean_bpm}
        case Spo2Minute() | Spo2SpotCheck():
            return {"kind": KindCode.SPO2, "spo2": sample.spo2_pct, "pulse": sample.pulse_per_min}
        case TemperatureSample():
            return {"kind": KindCode.BODY_TEMPERATURE, "temp": sample.temperature_c}
        case WeightSample():
            return {"kind": KindCode.BODY_WEIGHT, "kg": sample.weight_kg}
    raise TypeError(sample)  # pragma: no cover - every planned sample type is listed


def profiles(scenario: Scenario) -> Profiles:
    """The scenario patient's care-plan conditions."""
    return {scenario.patient_id: PatientProfile(conditions=frozenset(scenario.conditions))}


def care_plan(scenario: Scenario) -> dict[str, dict[str, dict[str, float]]]:
    """The scenario's UTC offset for the protocols (an explicit override: scenarios state a
    fixed offset) and the traditional 135/85 home threshold its `bp.home_aha_ama_2020` means."""
    offset = float(scenario.utc_offset_min)
    return {scenario.patient_id: {
        rule: {"utc_offset_min": offset} for rule in ("bp.home_esh_7d", "bp.home_china_2019")
    } | {"bp.home_aha_ama_2020": {"utc_offset_min": offset, **STAGE2_HOME}}}  # fmt: skip


def live_ticks(cols: ReadingColumns, start_s: int, end_s: int) -> list[int]:
    """When a live engine evaluates: just after each reading, and every hour."""
    after = {int(t) + 1 for t in cols.measured_at_s if start_s <= t < end_s}
    return sorted(after | set(range(start_s, end_s, HOUR_S)) | {end_s})


def webhook_counts(name: str) -> dict[str, float]:
    """Per patient-week for one scenario evaluated live: episodes opened, alert.updated
    revisions recorded, alert.updated pushed, alerts resolved."""
    scenario = load_scenario(name)
    cols = columns(scenario)
    start = int(scenario.start_utc.timestamp())
    end = int((scenario.start_utc + timedelta(days=scenario.days)).timestamp())
    counts: Counter[str] = Counter()
    for _, ch in replay_changes(
        cols, start, end, ticks=live_ticks(cols, start, end), overrides=care_plan(scenario),
        profiles=profiles(scenario),
    ):  # fmt: skip
        counts[ch.type.value] += 1
        if ch.type == EventType.ALERT_UPDATED and ch.notify:
            counts["updated_pushed"] += 1
    weeks = scenario.days / 7
    return {
        "opened": counts[EventType.ALERT_OPENED.value] / weeks,
        "updated_recorded": counts[EventType.ALERT_UPDATED.value] / weeks,
        "updated_pushed": counts["updated_pushed"] / weeks,
        "resolved": counts[EventType.ALERT_RESOLVED.value] / weeks,
        "days": float(scenario.days),
    }


def main() -> None:
    """Print the README table."""
    print("| scenario | days | opened | updates recorded | updates pushed | resolved | "
          "webhooks pushed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in shipped_scenarios():
        c = webhook_counts(name)
        pushed = c["opened"] + c["updated_pushed"] + c["resolved"]
        print(f"| `{name}` | {c['days']:.0f} | {c['opened']:.1f} | {c['updated_recorded']:.1f} | "
              f"{c['updated_pushed']:.1f} | {c['resolved']:.1f} | {pushed:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
