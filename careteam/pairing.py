"""What a hub's pairing event changes for whom (pure): the device registry's rule.

A device serves one patient, or a household cuff's users (user index -> patient). An event
names whom the device serves after it (`served`); `audit_changes` compares that with whom it
served before and says which patients gain it (``device.pair``) and which lose it
(``device.unpair``): an unpairing ends it for everyone it served, a re-pairing to someone else
ends it for those left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from devices.wire import PairingEvent

PAIR: Final = "device.pair"
UNPAIR: Final = "device.unpair"


@dataclass(frozen=True, slots=True)
class Change:
    """One audit entry a pairing event calls for: `action` for `patient_id` (with the cuff
    user index that patient had, or None)."""

    action: str
    patient_id: str
    user_index: int | None


def served(event: PairingEvent) -> dict[str, int | None]:
    """Patient -> cuff user index (None: the device's readings without a user index) that the
    event names, by user index; `patient_id` last unless it is one of the users."""
    users: dict[str, int | None] = {patient: index for index, patient in event.user_patients}
    users.setdefault(event.patient_id, None)
    return users


def audit_changes(
    event: PairingEvent, before: Mapping[str, int | None], after: Mapping[str, int | None]
) -> list[Change]:
    """The audit entries for applying `event` to a device that served `before`: a pairing for
    each patient in `after` (the event's `served`), then an unpairing for each patient it no
    longer serves (ordered by user index, then id)."""
    if event.action == "pair":
        changes = [Change(PAIR, patient, user) for patient, user in after.items()]
        gone = {patient: user for patient, user in before.items() if patient not in after}
    else:
        changes = []
        gone = {**before, **after}
    ordered = sorted(gone.items(), key=lambda g: (g[1] is None, g[1] or 0, g[0]))
    changes += [Change(UNPAIR, patient, user) for patient, user in ordered]
    return changes
