"""Named crash points for the crash-safety tests: the process SIGKILLs itself when it hits one.

Only the composition root turns them on (setting `failpoint`); in normal runs none is armed
and `hit` is a dictionary miss.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Final

log = logging.getLogger(__name__)

BEFORE_COMMIT: Final = "before_commit"  # a session's records are in memory, not on disk
AFTER_COMMIT: Final = "after_commit"  # stored with the cursor, nothing published
AFTER_PUBLISH: Final = "after_publish"  # PUBACKed, receipt not applied
KNOWN: Final = frozenset({BEFORE_COMMIT, AFTER_COMMIT, AFTER_PUBLISH})


class Failpoints:
    """The armed crash point, if any (see the module docstring)."""

    def __init__(self, armed: str | None = None) -> None:
        """Arm `armed`.

        Raises:
            ValueError: not one of `KNOWN`.
        """
        if armed is not None and armed not in KNOWN:
            raise ValueError(f"unknown failpoint {armed!r}; known: {sorted(KNOWN)}")
        self.armed = armed

    def hit(self, name: str) -> None:
        """SIGKILL this process if `name` is armed (no cleanup, no flush: a crash)."""
        if name == self.armed:
            log.warning("failpoint %s: killing the process", name)
            os.kill(os.getpid(), signal.SIGKILL)
