"""Unit conversions for the canonical reading.

Canonical units: glucose in mmol/L, pressures in mmHg, pulse in beats per minute.
Factors: glucose 18.016 mg/dL per mmol/L (molar mass of glucose 180.16 g/mol), pressure
7.50062 mmHg per kPa (1 mmHg = 133.322 Pa).
"""

from __future__ import annotations

MG_DL_PER_MMOL_L = 18.016
MMHG_PER_KPA = 7.50062


def mg_dl_to_mmol_l(glucose_mg_dl: float) -> float:
    """Convert a glucose concentration from mg/dL to mmol/L."""
    return glucose_mg_dl / MG_DL_PER_MMOL_L


def mmol_l_to_mg_dl(glucose_mmol_l: float) -> float:
    """Convert a glucose concentration from mmol/L to mg/dL."""
    return glucose_mmol_l * MG_DL_PER_MMOL_L


def kpa_to_mmhg(pressure_kpa: float) -> float:
    """Convert a pressure from kPa to mmHg."""
    return pressure_kpa * MMHG_PER_KPA


def mmhg_to_kpa(pressure_mmhg: float) -> float:
    """Convert a pressure from mmHg to kPa."""
    return pressure_mmhg / MMHG_PER_KPA
