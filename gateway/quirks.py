"""Which codec quirk profile a device needs, matched on its advertised name.

The codecs are strict unless told otherwise (`devices.codecs.profiles`); the gateway picks a
profile the way the vendors' own apps do, by the advertised local name (docs/device-profiles.md
quirk 23: derdilla/blood-pressure-monitor-fl matches Beurer cuffs by name, as the Beurer app does).
"""

from __future__ import annotations

import re
from typing import Final

_RULES: Final = (
    (re.compile(r"^(BM(48|59|85)|ELITE900)"), "beurer-bm"),
    (re.compile(r"^CareSens", re.IGNORECASE), "isens"),
)


def profile_for(advertised_name: str | None) -> str | None:
    """The quirk profile for a device advertising `advertised_name`; None means strict."""
    if not advertised_name:
        return None
    for pattern, profile in _RULES:
        if pattern.match(advertised_name):
            return profile
    return None
