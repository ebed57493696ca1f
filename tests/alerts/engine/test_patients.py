"""The patient port: care-plan profiles, and the care plan's values over another source's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from alerts.engine.care_plan import CarePlanError, parse_care_plan
from alerts.engine.evaluate import PatientProfile
from alerts.engine.patients import Layered, StaticPatients


def test_care_plan_splits_profiles_from_rule_overrides() -> None:
    plan = parse_care_plan({
        "p1": {"timezone": "Asia/Shanghai", "conditions": ["icd10:E11.9", "asthma"],
               "bp.home_china_2019": {"min_readings": 6}},
        "p2": {"glucose.hypo_l1": {"below_mmol_l": 4.4}},
    })  # fmt: skip
    assert plan.overrides == {
        "p1": {"bp.home_china_2019": {"min_readings": 6}},
        "p2": {"glucose.hypo_l1": {"below_mmol_l": 4.4}},
    }
    assert plan.profiles == {
        "p1": PatientProfile(ZoneInfo("Asia/Shanghai"), frozenset({"diabetes"}))
    }
    assert plan.patients().profiles(["p1", "p2", "p3"]) == plan.profiles


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "(document)"),
        ({"p1": []}, "p1"),
        ({"p1": {"timezone": 8}}, "p1.timezone"),
        ({"p1": {"timezone": "UTC+8"}}, "p1.timezone"),
        ({"p1": {"glucose.hypo_l1": 4.4}}, "p1.glucose.hypo_l1"),
        ({"p1": {"utc_offset_min": 480}}, "p1.utc_offset_min"),
    ],
)
def test_bad_care_plans_name_the_place(doc: object, where: str) -> None:
    with pytest.raises(CarePlanError) as info:
        parse_care_plan(doc)
    assert info.value.where == where


def test_layered_keeps_the_care_plan_values_as_explicit_overrides() -> None:
    berlin, shanghai = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
    record = StaticPatients({
        "a": PatientProfile(berlin, frozenset({"diabetes"})),
        "b": PatientProfile(berlin, frozenset({"chronic_kidney_disease"})),
    })  # fmt: skip
    care_plan = StaticPatients({
        "a": PatientProfile(shanghai),  # time zone only: the record's conditions stay
        "c": PatientProfile(None, frozenset({"coronary_heart_disease"})),
    })  # fmt: skip
    got = Layered(record, care_plan).profiles(["a", "b", "c", "d"])
    assert got == {
        "a": PatientProfile(shanghai, frozenset({"diabetes"})),
        "b": PatientProfile(berlin, frozenset({"chronic_kidney_disease"})),
        "c": PatientProfile(None, frozenset({"coronary_heart_disease"})),
    }
