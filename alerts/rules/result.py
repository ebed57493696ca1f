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
    - `severity[p]`: how bad the open episode is now (higher is worse, in the rule's units:
      mmHg or mmol/L past the threshold, a share, a slope), NaN when undefined; it decides
      whether an update is pushed (`Rule.worsens_by`).
    - `priority_level[p]`: the priority level (`catalog.PRIORITY_LEVEL`) per patient when it
      differs by patient (symptoms, late findings), else None (the rule's priority).
    """

    rule: Rule
    status: Int8Array
    anchor_row: IntArray
    evidence_mask: BoolArray
    stats: Mapping[str, FloatArray]
    params: Mapping[str, FloatArray]
    subject: str = ""
    closed: Runs | None = field(default=None)
    severity: FloatArray | None = None
    priority_level: Int8Array | None = None
