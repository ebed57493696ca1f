"""The alert rules as data: id, version, priority, parameters and the guideline each encodes.

Thresholds are parameters, never literals inside kernels, so that a care plan can override
them per patient (`resolve_params`). Changing a default changes the rule's behaviour, so it
must come with a new `version` (alert ids include the version: old episodes are not reused).
Every rule names its source (explained in docs/clinical-rules.md); where a default is a local
choice and not a guideline figure, the source says so. Parameters resolve per patient in three
layers: the defaults here, the targets the patient's care-plan conditions select
(`Rule.conditions`), then the care plan's explicit overrides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.events import Priority
from alerts.rules.conditions import (
    CHRONIC_KIDNEY_DISEASE,
    COPD,
    CORONARY_HEART_DISEASE,
    DIABETES,
    HEART_FAILURE,
)
from alerts.rules.errors import RuleParameterError

FloatArray = npt.NDArray[np.float64]

ADA_2024: Final = (
    "ADA Standards of Care 2024, Sec. 6 Glycemic Goals and Hypoglycemia, "
    "https://diabetesjournals.org/care/article/47/Supplement_1/S111/153951"
)
BATTELINO_2019: Final = (
    "Battelino et al., International Consensus on Time in Range, Diabetes Care "
    "2019;42:1593, https://doi.org/10.2337/dci19-0028 (reading-count proxy for fingerstick data)"
)
AHA_CRISIS: Final = (
    "AHA, Hypertensive crisis: when you should call 911, https://www.heart.org/en/health-topics/"
    "high-blood-pressure/understanding-blood-pressure-readings/hypertensive-crisis-when-you-"
    "should-call-911-for-high-blood-pressure (with symptoms of organ damage: an emergency, high "
    "priority; without: contact the clinician promptly, medium, IEC 60601-1-8); re-measure "
    "step: NHLBI, https://www.nhlbi.nih.gov/health/high-blood-pressure/symptoms"
)
AHA_LOW_BP: Final = (
    "AHA, Low blood pressure - when blood pressure is too low (< 90/60 mmHg), "
    "https://www.heart.org/en/health-topics/high-blood-pressure/the-facts-about-high-blood-"
    "pressure/low-blood-pressure-when-blood-pressure-is-too-low"
)
ESH_7DAY: Final = (
    "ASH/ESH-style 7-day home protocol, exclude day 1, goal 135/85, "
    "https://pmc.ncbi.nlm.nih.gov/articles/PMC8109940/table/t2"
)
AHA_AMA_2020: Final = (
    "AHA/AMA joint policy statement on self-measured BP (2020), "
    "https://www.ahajournals.org/doi/10.1161/CIR.0000000000000803 ; home 130/80 per the "
    "2017/2025 ACC/AHA guideline (doi 10.1016/j.jacc.2025.05.007); 135/85 is the traditional "
    "alternative (override per patient)"
)
CHINA_2019: Final = (
    "Chinese guideline for home blood pressure monitoring 2019, "
    "https://www5.zzu.edu.cn/gxy/info/1012/1161.htm ; 135/85 home threshold, "
    "https://www.bohe.cn/article/view/brl6znalnkta869.html"
)
THEIL_SEN: Final = (
    "Sen 1968, Estimates of the regression coefficient based on Kendall's tau, JASA 63:1379 "
    "(method); slope thresholds are local defaults for care-plan review, not guideline figures"
)
PLAUSIBILITY: Final = (
    "Glucose: ISO 15197:2013 (the manufacturer states the meter's measuring interval; results "
    "outside it are shown as LO/HI), widest home-meter interval 10-600 mg/dL (CGM too); cuff: "
    "systolic <= 300 mmHg, the highest cuff pressure IEC 80601-2-30 allows an automated "
    "sphygmomanometer in adult mode; systolic >= 50 mmHg after Omboni et al., J Hypertens "
    "1995;13:1105 (ambulatory BP editing limits); diastolic >= 30 mmHg and pulse pressure >= 10 "
    "mmHg are local limits; diastolic < systolic by definition. Wearables: heart rate 25-250 "
    "/min (outside the 30-200 /min adult range ANSI/AAMI EC13 asks heart-rate meters to cover, "
    "with margin), SpO2 >= 50 % (well below the 70-100 % range over which ISO 80601-2-61 has "
    "oximeters state their accuracy), body temperature 34-43 C (around the 35.5-42.0 C output "
    "range ISO 80601-2-56 requires of clinical thermometers), body weight 20-300 kg (local "
    "limits for an adult's home scale)"
)
BTS_FLETCHER: Final = (
    "Sustained desaturation: SpO2 < 90 % for >= 5 min, Fletcher et al., Nocturnal oxyhemoglobin "
    "desaturation in COPD patients, Chest 1987;92:604, https://doi.org/10.1378/chest.92.4.604 ; "
    "88 % with COPD (at risk of hypercapnic respiratory failure: BTS target range 88-92 %, "
    "O'Driscoll et al., BTS guideline for oxygen use in adults, Thorax 2017;72:i1, "
    "https://doi.org/10.1136/thoraxjnl-2016-209729); the 15-minute gap and clearing at 92 % "
    "for 5 min are local defaults"
)
BTS_COPD: Final = (
    "BTS guideline for oxygen use in adults (O'Driscoll et al., Thorax 2017;72:i1): target "
    "88-92 % for patients at risk of hypercapnic respiratory failure (COPD)"
)
HEART_RATE_SOURCE: Final = (
    "Tachycardia > 100 /min: 2015 ACC/AHA/HRS guideline for supraventricular tachycardia (Page "
    "et al., Circulation 2016;133:e506); bradycardia: the 2018 ACC/AHA/HRS bradycardia guideline "
    "(Kusumoto et al., Circulation 2019;140:e382) defines sinus bradycardia as < 50 /min and "
    "notes lower rates in sleep, so < 40 /min in the night rest window is a local default. "
    "Sustained = 10 consecutive minutes and at rest = the local night (00-06 h; the per-minute "
    "summaries carry no motion data) are local defaults, after the 10-minute inactivity window "
    "of consumer wearables' high and low heart-rate notifications"
)
FEVER: Final = (
    "CDC, Definitions of signs, symptoms and conditions of ill travelers: fever is a measured "
    "temperature of 100.4 F (38.0 C) or greater; for older adults IDSA uses >= 37.8 C oral "
    "(High et al., Clin Infect Dis 2009;48:149): a care-plan override"
)
HF_WEIGHT: Final = (
    "ESC 2021 heart failure guideline (McDonagh et al., Eur Heart J 2021;42:3599) and HFA "
    "self-care recommendations (Jaarsma et al., Eur J Heart Fail 2021;23:157, "
    "https://doi.org/10.1002/ejhf.2008): tell the heart-failure team about a gain of more "
    "than 2 kg in 3 days (patient guidance: heartfailurematters.org, Weight gain); the 3 days "
    "are read as 78 h (daily weighings at slightly different times) and clearing at 1 kg is "
    "a local default"
)
BATTELINO_CGM: Final = (
    "Battelino et al., International Consensus on Time in Range, Diabetes Care 2019;42:1593, "
    "https://doi.org/10.2337/dci19-0028 : time in 3.9-10.0 mmol/L > 70 %, below 3.9 < 4 %, CV "
    "<= 36 %, over 14 days with >= 70 % of possible CGM readings (time-weighted here)"
)
ADHERENCE: Final = (
    "Local default for episodic devices (an adherence window from the prescribed schedule); "
    "N days is a care-plan parameter, not a guideline figure"
)


# The guidelines state glucose thresholds in mg/dL and round the mmol/L figures. Readings are
# stored in mmol/L (mg/dL / 18.016), so the lower thresholds are the mg/dL figures converted and
# cut to 3 decimals: a meter's 54 mg/dL (2.9973 mmol/L) is level 1, not level 2 ("< 54"), and
# 70 mg/dL (3.8854) is not hypoglycaemia; a mmol/L meter's 3.0 and 3.9 fall on the same sides
# as with the rounded 3.0/3.9. (10.0 and 13.9 need no such care: 180 mg/dL = 9.991 <= 10.0,
# 250 mg/dL = 13.877 <= 13.9, 251 mg/dL = 13.932 > 13.9.)
MG54: Final = 2.997
MG70: Final = 3.885
MG130: Final = 7.216  # the pre-prandial target's top, 130 mg/dL (7.2158), is still on target
MG10: Final = 0.555  # 10 mg/dL (0.5551): the bottom of the widest home-meter measuring interval
MG600: Final = 33.304  # 600 mg/dL (33.3037): its top


PRIORITY_LEVEL: Final[Mapping[Priority, int]] = {
    Priority.LOW: 0,
    Priority.MEDIUM: 1,
    Priority.HIGH: 2,
}
LEVEL_PRIORITY: Final = (Priority.LOW, Priority.MEDIUM, Priority.HIGH)
# A late finding (a severe reading that arrived after `max_age_h`) pages nobody: it is about the
# past, so it is at most medium priority (IEC 60601-1-8: prompt, not immediate, response).
LATE_PRIORITY_CAP: Final = Priority.MEDIUM


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: what it is, how urgent, its thresholds and where they come from.

    - `conditions`: per care-plan condition (`alerts.rules.conditions`), the parameters it
      sets for the patient (before the care plan's explicit overrides), from `conditions_source`.
    - `worsens_by`: how much the episode's severity (`RuleResult.severity`, higher is worse)
      must grow past the value last pushed for an `alert.updated` to be pushed; 0: never.
    - `symptoms_priority`: the priority when a triggering reading carries the `symptoms` flag.
    """

    rule_id: str
    version: int
    title: str
    priority: Priority
    params: Mapping[str, float]
    source: str
    conditions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    conditions_source: str = ""
    worsens_by: float = 0.0
    symptoms_priority: Priority | None = None


def _rule(
    rule_id: str,
    version: int,
    title: str,
    priority: Priority,
    source: str,
    *,
    worsens_by: float = 0.0,
    conditions: Mapping[str, Mapping[str, float]] | None = None,
    conditions_source: str = "",
    symptoms_priority: Priority | None = None,
    **params: float,
) -> Rule:
    return Rule(
        rule_id, version, title, priority, dict(params), source, dict(conditions or {}),
        conditions_source, worsens_by, symptoms_priority,
    )  # fmt: skip


_H = Priority.HIGH
_M = Priority.MEDIUM
_L = Priority.LOW
_NAN = float("nan")
# The ESH-style protocol's lower home goal for patients with diabetes, coronary heart disease or
# chronic kidney disease (130/80), with the same 3/2 mmHg hysteresis as the default goal.
_HOME_130_80: Final = {
    "systolic_mmhg": 130.0,
    "diastolic_mmhg": 80.0,
    "clear_systolic_mmhg": 127.0,
    "clear_diastolic_mmhg": 78.0,
}
# Weight watching for fluid retention is a heart-failure care plan's (ESC 2021).
_HEART_FAILURE_WEIGHTS: Final = {HEART_FAILURE: {"enabled": 1.0}}
# SpO2 target 88-92 % for patients at risk of hypercapnia (BTS 2017).
_COPD_SPO2: Final = {COPD: {"below_pct": 88.0, "clear_at_pct": 90.0}}
_LOWER_HOME_GOAL: Final = {
    DIABETES: _HOME_130_80,
    CORONARY_HEART_DISEASE: _HOME_130_80,
    CHRONIC_KIDNEY_DISEASE: _HOME_130_80,
}
# Per-reading rules raise a late finding for readings that arrived more than `max_age_h` after
# they were taken, when taken at most `late_max_age_d` before they arrived (local default).
_LATE_D = 14.0

RULES: Final[tuple[Rule, ...]] = (
    _rule("glucose.hypo_l2", 2, "Level 2 hypoglycaemia (< 3.0 mmol/L, or meter LO)", _H, ADA_2024,
          worsens_by=0.5, below_mmol_l=MG54, clear_at_mmol_l=3.9, max_age_h=24.0,
          late_max_age_d=_LATE_D),
    _rule("glucose.hypo_l1", 2, "Level 1 hypoglycaemia (3.0 to < 3.9 mmol/L)", _M, ADA_2024,
          worsens_by=0.5, below_mmol_l=MG70, floor_mmol_l=MG54, clear_at_mmol_l=4.2,
          max_age_h=24.0, late_max_age_d=_LATE_D),
    _rule("glucose.hyper", 2, "Hyperglycaemia (> 13.9 mmol/L, or meter HI)", _M, BATTELINO_2019,
          worsens_by=3.0, above_mmol_l=13.9, clear_at_mmol_l=12.0, max_age_h=24.0,
          late_max_age_d=_LATE_D),
    _rule("glucose.tir_14d", 1, "Share of readings in 3.9-10.0 mmol/L over 14 days below target",
          _L, BATTELINO_2019, worsens_by=0.10, low_mmol_l=MG70, high_mmol_l=10.0, min_share=0.70,
          clear_share=0.75, window_d=14.0, min_readings=28.0, min_days=10.0, fresh_h=72.0),
    _rule("glucose.tbr_14d", 1, "Share of readings below 3.9 mmol/L over 14 days above target",
          _M, BATTELINO_2019, worsens_by=0.05, low_mmol_l=MG70, max_share=0.04, clear_share=0.03,
          window_d=14.0, min_readings=28.0, min_days=10.0, fresh_h=72.0),
    _rule("glucose.cv_14d", 1, "Glycaemic variability: coefficient of variation over 14 days",
          _L, BATTELINO_2019, worsens_by=0.05, max_cv=0.36, clear_cv=0.33, window_d=14.0,
          min_readings=28.0, min_days=10.0, fresh_h=72.0),
    _rule("glucose.fasting_mean_7d", 1, "Mean fasting glucose over 7 days above target", _L,
          ADA_2024, worsens_by=1.0, max_mean_mmol_l=MG130, clear_mean_mmol_l=7.0, window_d=7.0,
          min_readings=4.0, fresh_h=72.0),
    _rule("bp.crisis", 2, "Hypertensive crisis (>= 180 or >= 120 mmHg), re-measured", _M,
          AHA_CRISIS, worsens_by=10.0, symptoms_priority=_H, systolic_mmhg=180.0,
          diastolic_mmhg=120.0, confirm_within_min=15.0, clear_systolic_mmhg=170.0,
          clear_diastolic_mmhg=110.0, max_age_h=24.0, late_max_age_d=_LATE_D),
    _rule("bp.hypotension", 2, "Hypotension (systolic < 90 or diastolic < 60 mmHg)", _M,
          AHA_LOW_BP, worsens_by=10.0, systolic_mmhg=90.0, diastolic_mmhg=60.0,
          clear_systolic_mmhg=95.0, clear_diastolic_mmhg=65.0, max_age_h=24.0,
          late_max_age_d=_LATE_D),
    _rule("bp.home_esh_7d", 2, "Home BP uncontrolled, 7-day protocol without day 1 "
          "(esh_7day_drop_day1)", _L, ESH_7DAY, worsens_by=5.0, conditions=_LOWER_HOME_GOAL,
          conditions_source=ESH_7DAY, systolic_mmhg=135.0, diastolic_mmhg=85.0,
          clear_systolic_mmhg=132.0, clear_diastolic_mmhg=83.0, min_readings=12.0, min_days=3.0,
          utc_offset_min=_NAN),
    _rule("bp.home_aha_ama_2020", 2, "Home BP uncontrolled, AHA/AMA 2020 protocol", _L,
          AHA_AMA_2020, worsens_by=5.0, systolic_mmhg=130.0, diastolic_mmhg=80.0,
          clear_systolic_mmhg=127.0, clear_diastolic_mmhg=78.0, min_readings=12.0, min_days=3.0,
          utc_offset_min=_NAN),
    _rule("bp.home_china_2019", 2, "Home BP uncontrolled, 2019 Chinese HBPM guideline", _L,
          CHINA_2019, worsens_by=5.0, systolic_mmhg=135.0, diastolic_mmhg=85.0,
          clear_systolic_mmhg=132.0, clear_diastolic_mmhg=83.0, min_readings=4.0, min_days=2.0,
          utc_offset_min=_NAN),
    _rule("bp.trend_14d", 1, "Systolic rising over 14 days (Theil-Sen slope)", _L, THEIL_SEN,
          worsens_by=1.0, max_slope_mmhg_per_d=1.0, clear_slope_mmhg_per_d=0.5, window_d=14.0,
          min_readings=10.0, min_span_d=7.0, fresh_h=72.0),
    _rule("glucose.fasting_trend_14d", 1, "Fasting glucose rising over 14 days (Theil-Sen)", _L,
          THEIL_SEN, worsens_by=0.1, max_slope_mmol_l_per_d=0.1, clear_slope_mmol_l_per_d=0.05,
          window_d=14.0, min_readings=7.0, min_span_d=7.0, fresh_h=72.0),
    _rule("adherence.no_readings", 1, "No reading for N days from a device in use", _L,
          ADHERENCE, max_gap_d=3.0, lookback_d=35.0, expects_glucose=-1.0,
          expects_blood_pressure=-1.0),
    _rule("quality.implausible", 2, "Implausible readings from a device (data quality)", _L,
          PLAUSIBILITY, glucose_min_mmol_l=MG10, glucose_max_mmol_l=MG600,
          systolic_max_mmhg=300.0, systolic_min_mmhg=50.0, diastolic_min_mmhg=30.0,
          min_pulse_pressure_mmhg=10.0, heart_rate_min_per_min=25.0,
          heart_rate_max_per_min=250.0, spo2_min_pct=50.0, body_temperature_min_c=34.0,
          body_temperature_max_c=43.0, body_weight_min_kg=20.0, body_weight_max_kg=300.0,
          window_d=7.0),
    _rule("spo2.low_sustained", 1, "SpO2 below 90 % (88 % with COPD) for 5 minutes or more", _M,
          BTS_FLETCHER, worsens_by=3.0, conditions=_COPD_SPO2, conditions_source=BTS_COPD,
          below_pct=90.0, clear_at_pct=92.0, min_minutes=5.0, clear_minutes=5.0,
          max_gap_min=15.0, observation_s=60.0, max_age_h=24.0, late_max_age_d=_LATE_D),
    _rule("heart_rate.tachycardia_rest", 1, "Heart rate above 100 /min at rest for 10 minutes",
          _M, HEART_RATE_SOURCE, worsens_by=15.0, above_per_min=100.0, clear_at_per_min=95.0,
          min_minutes=10.0, clear_minutes=10.0, max_gap_min=2.0, observation_s=60.0,
          rest_from_h=0.0, rest_to_h=6.0, utc_offset_min=_NAN, max_age_h=24.0,
          late_max_age_d=_LATE_D),
    _rule("heart_rate.bradycardia_rest", 1, "Heart rate below 40 /min at rest for 10 minutes",
          _M, HEART_RATE_SOURCE, worsens_by=5.0, below_per_min=40.0, clear_at_per_min=45.0,
          min_minutes=10.0, clear_minutes=10.0, max_gap_min=2.0, observation_s=60.0,
          rest_from_h=0.0, rest_to_h=6.0, utc_offset_min=_NAN, max_age_h=24.0,
          late_max_age_d=_LATE_D),
    _rule("temperature.fever", 1, "Fever (38.0 C or higher)", _M, FEVER, worsens_by=0.5,
          above_c=38.0, clear_below_c=37.5, max_age_h=24.0, late_max_age_d=_LATE_D),
    _rule("weight.gain_hf_3d", 1, "Weight gain of more than 2 kg in 3 days (heart failure)", _M,
          HF_WEIGHT, worsens_by=1.0, conditions=_HEART_FAILURE_WEIGHTS,
          conditions_source=HF_WEIGHT, enabled=0.0, gain_kg=2.0, clear_gain_kg=1.0,
          window_h=78.0, max_age_h=48.0, late_max_age_d=_LATE_D),
    _rule("cgm.tir_14d", 1, "CGM time in range (3.9-10.0 mmol/L) over 14 days below 70 %", _L,
          BATTELINO_CGM, worsens_by=0.10, low_mmol_l=MG70, high_mmol_l=10.0, min_share=0.70,
          clear_share=0.75, window_d=14.0, min_wear=0.70, max_interval_min=15.0, fresh_h=24.0),
    _rule("cgm.tbr_14d", 1, "CGM time below 3.9 mmol/L over 14 days above 4 %", _M,
          BATTELINO_CGM, worsens_by=0.05, low_mmol_l=MG70, max_share=0.04, clear_share=0.03,
          window_d=14.0, min_wear=0.70, max_interval_min=15.0, fresh_h=24.0),
    _rule("cgm.cv_14d", 1, "CGM glycaemic variability (CV) over 14 days above 36 %", _L,
          BATTELINO_CGM, worsens_by=0.05, max_cv=0.36, clear_cv=0.33, window_d=14.0,
          min_wear=0.70, max_interval_min=15.0, fresh_h=24.0),
)  # fmt: skip

RULES_BY_ID: Final[Mapping[str, Rule]] = {rule.rule_id: rule for rule in RULES}

# {patient_id: {rule_id: {param: value}}}: the care plan's per-patient thresholds.
Overrides = Mapping[str, Mapping[str, Mapping[str, float]]]


def resolve_params(
    rule: Rule,
    patient_ids: Sequence[str],
    overrides: Overrides,
    conditions: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, FloatArray]:
    """Per-patient parameter arrays for `rule`: defaults, then the targets the patient's
    conditions select (`Rule.conditions`, in sorted condition order), then the care plan's
    explicit overrides.

    The loops run over the care plans and conditions given (a few), not over the patients.

    Raises:
        RuleParameterError: an override names a parameter the rule does not have, or is not a
            finite number.
    """
    out = {name: np.full(len(patient_ids), value) for name, value in rule.params.items()}
    if not overrides and not (conditions and rule.conditions):
        return out
    index = {pid: i for i, pid in enumerate(patient_ids)}
    for patient_id, held in (conditions or {}).items():
        i = index.get(patient_id)
        if i is None:
            continue
        for condition in sorted(held & rule.conditions.keys()):
            for name, value in rule.conditions[condition].items():
                out[name][i] = value
    for patient_id, per_rule in overrides.items():
        values = per_rule.get(rule.rule_id)
        if not values or patient_id not in index:
            continue
        for name, value in values.items():
            if name not in out:
                raise RuleParameterError(rule.rule_id, name, "no such parameter")
            if not isinstance(value, int | float) or not np.isfinite(value):
                raise RuleParameterError(rule.rule_id, name, f"{value!r} is not a finite number")
            out[name][index[patient_id]] = float(value)
    return out


def condition_targets(rule: Rule, held: frozenset[str]) -> list[str]:
    """The conditions among `held` that set `rule`'s targets (for the evidence)."""
    return sorted(held & rule.conditions.keys())
