"""Hand-built columns for rule tests."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.engine.evaluate import evaluate_all, no_prior_state
from alerts.rules.catalog import RULES_BY_ID
from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode, build_columns
from alerts.rules.segments import Status

NOW_S = 1_772_352_000  # 2026-03-01T08:00:00Z
H = 3600
D = 86_400


def glucose(values: Sequence[float | str], *, every_s: int = H, meal: int = 0) -> ReadingColumns:
    """One patient's glucose readings, the last at NOW - 10 min; "HI"/"LO"/"NaN" specials."""
    n = len(values)
    codes = {"HI": SpecialCode.HI, "LO": SpecialCode.LO, "NaN": SpecialCode.INVALID}
    special = [codes.get(v, SpecialCode.NONE) if isinstance(v, str) else 0 for v in values]
    nums = [float("nan") if isinstance(v, str) else v for v in values]
    return build_columns(
        ["p"] * n, [NOW_S - 600 - (n - 1 - i) * every_s for i in range(n)], [KindCode.GLUCOSE] * n,
        glucose_mmol_l=nums, glucose_special=special, meal=[meal] * n,
        reading_ref=[f"r{i}" for i in range(n)],
    )  # fmt: skip


def bp(pairs: Sequence[tuple[float, float]], times: Sequence[int]) -> ReadingColumns:
    """One patient's cuff readings at the given times (seconds since the epoch)."""
    n = len(pairs)
    return build_columns(
        ["p"] * n, list(times), [KindCode.BLOOD_PRESSURE] * n,
        systolic_mmhg=[s for s, _ in pairs], diastolic_mmhg=[d for _, d in pairs],
        reading_ref=[f"r{i}" for i in range(n)],
    )  # fmt: skip


def status_of(rule_id: str, cols: ReadingColumns, now_s: int = NOW_S) -> Status:
    """Status of one rule for patient "p" with no prior episode."""
    (result, *_) = evaluate_all(cols, now_s, prior=no_prior_state(), rules=[RULES_BY_ID[rule_id]])
    return Status(int(result.status[cols.patient_ids.index("p")]))
