"""What an evaluation knows besides the readings and the parameters (pure values).

- `clock`: local time per patient and reading (`alerts.rules.localtime`);
- `new_rows`: rows no earlier evaluation has seen (a late finding opens only on a reading that
  just arrived); None means every row is new (an offline evaluation, a first step);
- `hub_offline`: per patient, whether a hub of theirs is known to be offline or unable to store
  (an open `technical.hub_offline` or `technical.hub_storage_full` finding): their silence is
  the hub's, so `adherence.no_readings` has no data to judge them by. None: no patient's hub
  is known to be offline;
- `starts`: each patient's first row and the row count at the end (segment offsets, computed
  once per evaluation for the compiled per-patient passes); None: computed where needed;
- `scratch`: what kernels of one evaluation share (the glucose window rules' statistics, one
  pass for the rules with the same window); None (the default) shares nothing.

Care-plan conditions reach the kernels as the parameters they select (`resolve_params`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.rules.localtime import LocalClock
from alerts.rules.result import BoolArray, IntArray


@dataclass(frozen=True, slots=True)
class Context:
    """See the module doc."""

    clock: LocalClock = field(default_factory=lambda: LocalClock(()))
    new_rows: BoolArray | None = None
    hub_offline: BoolArray | None = None
    starts: IntArray | None = None
    scratch: dict[str, object] | None = None


NO_CONTEXT = Context()
