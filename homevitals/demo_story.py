"""The demo's story as data (pure): who the patients are, who follows them, what they agreed to.

Two patients come home, each with a glucose meter and a blood-pressure cuff on a home hub: Wang
Jianguo, discharged from Riverside Hospital with type 2 diabetes on a new sulfonylurea dose and
hypertension not yet controlled (scenario `discharge-t2-htn`), and Li Mei, whose diabetes and
hypertension are well controlled and who weighs herself every morning on a bathroom scale
(`well-controlled`, the negative control). Three care teams
follow both: the hospital's clinic (every kind of data, alert webhooks, a nurse who
acknowledges), the community health centre (every kind), and the family practice, which the
patients did not grant blood pressure: its dashboard shows that section as not shared, and the
refusal is in the audit trail.

A scenario run on its own (`homevitals demo --scenario NAME`) gets a patient made from the
scenario (its id, its UTC offset as the time zone, conditions from its devices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from firmware_sims.scenario import Scenario

ALL_KINDS: Final = ("glucose", "blood_pressure", "alerts", "devices")
STORY_SCENARIOS: Final = ("discharge-t2-htn", "well-controlled")


@dataclass(frozen=True, slots=True)
class PatientStory:
    """A patient of the demo, as the care team registers them."""

    patient_id: str
    display_name: str
    timezone: str  # IANA
    conditions: tuple[str, ...]
    language: str = "en"  # the record's language: "en" or "zh"
    page_locale: str = "en"  # the hub's pairing page: "en" or "zh-CN"


@dataclass(frozen=True, slots=True)
class TeamStory:
    """A care team following every patient of the demo."""

    institution: str
    institution_kind: str
    team: str
    member: str
    role: str
    tier: int
    kinds: tuple[str, ...]  # what the patients granted this team
    webhooks: bool = False  # alert webhooks to the demo's verifying receiver


HOSPITAL: Final = TeamStory(
    "Riverside Hospital", "hospital_clinic", "Diabetes and hypertension clinic",
    "Nurse on call", "nurse", 0, ALL_KINDS, webhooks=True,
)  # fmt: skip
TEAMS: Final = (
    HOSPITAL,
    TeamStory("Riverside Community Health Centre", "community_health_centre",
              "Chronic disease team", "Nurse Huang", "nurse", 1, ALL_KINDS),
    TeamStory("Dr Zhou's family practice", "family_practice", "Family practice", "Dr Zhou",
              "physician", 1, ("glucose", "alerts", "devices")),  # no blood pressure
)  # fmt: skip

_KNOWN: Final = {
    "pat-wang-001": ("Wang Jianguo", "Asia/Shanghai", ("diabetes_type_2", "hypertension"), "zh"),
    "pat-li-002": ("Li Mei", "Asia/Shanghai", ("diabetes_type_2", "hypertension"), "zh"),
}


def fixed_offset_zone(utc_offset_min: int) -> str:
    """An IANA zone with a fixed UTC offset of whole hours (``Etc/GMT-8`` is UTC+8), else UTC."""
    if utc_offset_min % 60 or not utc_offset_min:
        return "UTC"
    return f"Etc/GMT{-(utc_offset_min // 60):+d}"  # POSIX sign convention


def patient_for(scenario: Scenario) -> PatientStory:
    """The story's patient for a scenario: a known one, or one made from the scenario."""
    known = _KNOWN.get(scenario.patient_id)
    if known is not None:
        name, zone, codes, language = known
        locale = "zh-CN" if language == "zh" else "en"
        return PatientStory(scenario.patient_id, name, zone, codes, language, locale)
    conditions = list(scenario.conditions)
    if not conditions:  # none declared: what the devices are for
        if any(d.glucose is not None for d in scenario.devices):
            conditions.append("diabetes")
        if any(d.blood_pressure is not None for d in scenario.devices):
            conditions.append("hypertension")
    return PatientStory(
        scenario.patient_id,
        f"Demo patient {scenario.patient_id}",
        fixed_offset_zone(scenario.utc_offset_min),
        tuple(conditions),
    )
