"""The simulated physiology of firmware_sims' shipped scenarios, through the engine.

Each scenario declares the alerts its readings must raise (`expected_alerts`, and with
`only_expected_alerts` nothing else). The planned readings (what the meters and cuffs will
show, the same generator the simulated devices use) are replayed through the rules over the
scenario's days, with the patient's UTC offset in the care plan.

Scenarios name engine rule ids. Their `bp.home_aha_ama_2020` means "mean of the last 7 days
>= 135/85" (firmware_sims/expectations.py): the care plan here sets that traditional threshold
on the engine rule, and the other two home protocols (the same finding under another
averaging protocol) may fire with it.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from alerts.engine.replay import replay
from alerts.rules.columns import KindCode, MealCode, ReadingColumns, build_columns
from devices.units import MG_DL_PER_MMOL_L
from firmware_sims.physiology_bp import BloodPressureSample
from firmware_sims.physiology_glucose import GlucoseSample
from firmware_sims.scenario import Scenario
from firmware_sims.scenario_files import load_scenario, shipped_scenarios

SAME_FINDING = {"bp.home_aha_ama_2020": {"bp.home_esh_7d", "bp.home_china_2019"}}
STAGE2_HOME = {"systolic_mmhg": 135.0, "diastolic_mmhg": 85.0,
               "clear_systolic_mmhg": 132.0, "clear_diastolic_mmhg": 83.0}  # fmt: skip
MEALS = {m.name.lower(): m.value for m in MealCode}


def _columns(scenario: Scenario) -> ReadingColumns:
    rows: list[dict[str, object]] = []
    for index in range(len(scenario.devices)):
        for k, sample in enumerate(scenario.plan(index)):
            row: dict[str, object] = {"t": int(sample.at_utc.timestamp()), "ref": f"{index}-{k}"}
            if isinstance(sample, GlucoseSample):
                g = sample.meter_mg_dl / MG_DL_PER_MMOL_L
                row.update(kind=KindCode.GLUCOSE, g=g, meal=MEALS.get(sample.meal, 0),
                           control=sample.control_solution)  # fmt: skip
            else:
                assert isinstance(sample, BloodPressureSample)
                row.update(kind=KindCode.BLOOD_PRESSURE, sys=sample.systolic_mmhg,
                           dia=sample.diastolic_mmhg, flagged=sample.body_movement)  # fmt: skip
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
    )  # fmt: skip


def _scenarios() -> list[str]:
    return [name for name in shipped_scenarios() if load_scenario(name).expected_alerts
            or load_scenario(name).only_expected_alerts]  # fmt: skip


@pytest.mark.parametrize("name", _scenarios())
def test_scenario_raises_its_declared_alerts(name: str) -> None:
    scenario = load_scenario(name)
    cols = _columns(scenario)
    offset = float(scenario.utc_offset_min)
    plan = {scenario.patient_id: {
        rule: {"utc_offset_min": offset}
        for rule in ("bp.home_esh_7d", "bp.home_china_2019")
    } | {"bp.home_aha_ama_2020": {"utc_offset_min": offset, **STAGE2_HOME}}}  # fmt: skip
    start = int(scenario.start_utc.timestamp())
    end = int((scenario.start_utc + timedelta(days=scenario.days)).timestamp())
    episodes = replay(cols, start, end, step_s=6 * 3600, overrides=plan)
    fired: dict[str, int] = {}
    for episode in episodes:
        rule = str(episode["rule_id"])
        fired[rule] = fired.get(rule, 0) + 1
    expected = {e.rule: e.min_count for e in scenario.expected_alerts}
    for rule, count in expected.items():
        assert fired.get(rule, 0) >= count, (rule, fired)
    if scenario.only_expected_alerts:
        allowed = set(expected).union(*(SAME_FINDING.get(rule, set()) for rule in expected))
        assert set(fired) <= allowed, fired
