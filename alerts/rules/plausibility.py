"""Implausible readings: values no working device reports, or physiology does not allow.

A reading is `implausible` when a glucose value lies outside what home meters can measure, or a
cuff reading breaks a device limit or physiology. Implausible readings are kept (the record is
never edited), never evaluated by threshold rules (`glucose_rows` and `bp_rows` leave them out)
and raise the low-priority data-quality finding `quality.implausible` for the device kind.

The limits are the parameters of `quality.implausible` in the catalog (sources there and in the
README): glucose outside 10-600 mg/dL (the widest measuring interval of home meters: ISO
15197:2013 has the manufacturer state the interval, and a meter shows LO/HI outside it);
systolic above 300 mmHg (the highest cuff pressure IEC 80601-2-30 lets an automated cuff apply
in adult mode); systolic below 50 mmHg (Omboni et al. 1995 editing limit); diastolic below 30
mmHg, a pulse pressure below 10 mmHg (local limits); diastolic at or above systolic
(impossible by definition: systolic is the peak of the pressure wave, diastolic its trough).
Wearables: CGM glucose has the meters' limits; a heart rate (a strap's minute mean) outside
25-250 /min, an SpO2 below 50 %, a body temperature outside 34-43 C, a body weight outside
20-300 kg (see the catalog's source for each).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

import numpy as np

from alerts.rules.catalog import Rule
from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode
from alerts.rules.context import NO_CONTEXT, Context
from alerts.rules.result import BoolArray, FloatArray, IntArray, RuleResult
from alerts.rules.segments import Status
from alerts.rules.window_pass import implausible_flags, segment_starts

DAY_S = 86_400
SUBJECTS: Final = {
    KindCode.GLUCOSE: "glucose",
    KindCode.BLOOD_PRESSURE: "blood_pressure",
    KindCode.CGM_GLUCOSE: "cgm_glucose",
    KindCode.HEART_RATE: "heart_rate",
    KindCode.SPO2: "spo2",
    KindCode.BODY_TEMPERATURE: "body_temperature",
    KindCode.BODY_WEIGHT: "body_weight",
}
# (reason, value column, limit parameter, True for "below the limit") of the wearables.
_VITAL_LIMITS: Final = (
    ("heart_rate_below_range", "heart_rate_per_min", "heart_rate_min_per_min", True),
    ("heart_rate_above_range", "heart_rate_per_min", "heart_rate_max_per_min", False),
    ("spo2_below_range", "spo2_pct", "spo2_min_pct", True),
    ("body_temperature_below_range", "body_temperature_c", "body_temperature_min_c", True),
    ("body_temperature_above_range", "body_temperature_c", "body_temperature_max_c", False),
    ("body_weight_below_range", "body_weight_kg", "body_weight_min_kg", True),
    ("body_weight_above_range", "body_weight_kg", "body_weight_max_kg", False),
)

RULE_ID: Final = "quality.implausible"
# Reason -> the statistic that counts it in the finding's evidence.
REASONS: Final = (
    "glucose_below_range",
    "glucose_above_range",
    "systolic_above_range",
    "systolic_below_range",
    "diastolic_below_range",
    "diastolic_not_below_systolic",
    "pulse_pressure_too_narrow",
    *(reason for reason, *_ in _VITAL_LIMITS),
)


def implausible_reasons(
    cols: ReadingColumns, params: Mapping[str, FloatArray], sel: IntArray
) -> dict[str, BoolArray]:
    """Per reason, which of the rows `sel` it applies to (masks over `sel`; control-solution
    results are left out)."""
    ps = cols.patient[sel]
    g = cols.glucose_mmol_l[sel]
    kind = cols.kind[sel]
    control = cols.control_solution[sel]
    numeric = (
        np.isin(kind, (KindCode.GLUCOSE, KindCode.CGM_GLUCOSE))
        & (cols.glucose_special[sel] == SpecialCode.NONE)
        & ~control
    )
    cuff = (kind == KindCode.BLOOD_PRESSURE) & ~control
    sys_ = cols.systolic_mmhg[sel]
    dia = cols.diastolic_mmhg[sel]
    with np.errstate(invalid="ignore"):
        vitals = {
            reason: (getattr(cols, column)[sel] < params[limit][ps])
            if below
            else (getattr(cols, column)[sel] > params[limit][ps])
            for reason, column, limit, below in _VITAL_LIMITS
        }
        return {
            **{reason: mask & ~control for reason, mask in vitals.items()},
            "glucose_below_range": numeric & (g < params["glucose_min_mmol_l"][ps]),
            "glucose_above_range": numeric & (g > params["glucose_max_mmol_l"][ps]),
            "systolic_above_range": cuff & (sys_ > params["systolic_max_mmhg"][ps]),
            "systolic_below_range": cuff & (sys_ < params["systolic_min_mmhg"][ps]),
            "diastolic_below_range": cuff & (dia < params["diastolic_min_mmhg"][ps]),
            "diastolic_not_below_systolic": cuff & (dia >= sys_),
            "pulse_pressure_too_narrow": cuff
            & (sys_ - dia < params["min_pulse_pressure_mmhg"][ps])
            & (dia < sys_),
        }


def flag_implausible(
    cols: ReadingColumns, params: Mapping[str, FloatArray], starts: IntArray | None = None
) -> ReadingColumns:
    """`cols` with `implausible` set from the limits in `params` (same rows, same order).

    One compiled pass over each patient's rows comparing every value column with the
    patient's limits (`window_pass.implausible_flags`; NaN, where a column does not apply or a
    glucose value is a meter special, compares false); the reasons are only worked out for
    the finding's evidence (`implausible_reasons`). `starts`: the segment offsets, if known.
    """
    n_pat = cols.n_patients

    def limit(name: str) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(params[name], n_pat), dtype=np.float64)

    below = [
        (cols.glucose_mmol_l, limit("glucose_min_mmol_l")),
        (cols.systolic_mmhg, limit("systolic_min_mmhg")),
        (cols.diastolic_mmhg, limit("diastolic_min_mmhg")),
    ]
    above = [
        (cols.glucose_mmol_l, limit("glucose_max_mmol_l")),
        (cols.systolic_mmhg, limit("systolic_max_mmhg")),
    ]
    for _, column, name, is_below in _VITAL_LIMITS:
        (below if is_below else above).append((getattr(cols, column), limit(name)))
    flags = implausible_flags(
        segment_starts(cols) if starts is None else starts, cols.control_solution, below=below,
        above=above, systolic=cols.systolic_mmhg, diastolic=cols.diastolic_mmhg,
        min_pulse_pressure=limit("min_pulse_pressure_mmhg"),
    )  # fmt: skip
    if not flags.any() and not cols.implausible.any():
        return cols
    return replace(cols, implausible=flags)


def implausible_finding(
    rule: Rule,
    cols: ReadingColumns,
    now_s: int,
    params: Mapping[str, FloatArray],
    was_active: BoolArray,
    *,
    after_row: IntArray | None = None,
    context: Context = NO_CONTEXT,
    kind: KindCode,
) -> RuleResult:
    """`quality.implausible` for one kind of device (the result's `subject` is the kind):
    active while the patient's device of that kind sent an implausible reading within the last
    `window_d` days; the statistics count each reason.

    Raises:
        KeyError: `kind` has no subject (`SUBJECTS`).
    """
    subject = SUBJECTS[kind]
    n_pat = cols.n_patients
    rows = np.flatnonzero(cols.implausible)
    t = cols.measured_at_s[rows]
    ps = cols.patient[rows]
    in_window = (cols.kind[rows] == kind) & (t <= now_s)
    rows = rows[in_window & (t > now_s - params["window_d"][ps] * DAY_S)]
    p = cols.patient[rows]
    count = np.bincount(p, minlength=n_pat)
    active = count > 0
    newest = np.full(n_pat, -1, dtype=np.int64)
    newest[p] = rows  # rows ascend: the last assignment per patient wins
    flagged = np.zeros(len(cols), dtype=np.bool_)
    flagged[rows] = True
    stats = {"implausible_readings": count.astype(np.float64)}
    for reason, mask in implausible_reasons(cols, params, rows).items():
        stats[reason] = np.bincount(p[mask], minlength=n_pat).astype(np.float64)
    status = np.where(active, Status.ACTIVE, Status.CLEAR).astype(np.int8)
    anchor = np.where(active & ~was_active, newest, -1).astype(np.int64)
    return RuleResult(
        rule, status, anchor, flagged, stats, params, subject=subject,
        severity=count.astype(np.float64),
    )  # fmt: skip
