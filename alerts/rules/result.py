"""What a rule kernel returns: per-patient status and statistics, and the rows it cites."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alerts.rules.catalog import Rule
from alerts.rules.segments import Runs

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule evaluated for every patient of a `ReadingColumns` at `now`.

    - `status[p]`: a `segments.Status` value.
    - `anchor_row[p]`: for an active patient, the row whose reading id keys the episode (its
      first triggering evidence); -1 when the episode was already open before these rows.
    - `evidence_mask`: rows the rule cites (triggering readings, or the readings of the window).
    - `stats`: per-patient statistics (NaN where undefined); `params`: thresholds used.
    - `closed`: per-reading rules only, the runs that opened and cleared within the rows.
    """

    rule: Rule
    status: Int8Array
    anchor_row: IntArray
    evidence_mask: BoolArray
    stats: Mapping[str, FloatArray]
    params: Mapping[str, FloatArray]
    subject: str = ""
    closed: Runs | None = field(default=None)
