"""Errors of the firmware_sims package (pure: no I/O)."""

from __future__ import annotations


class FirmwareSimsError(Exception):
    """Base of every firmware_sims error."""


class ScenarioError(FirmwareSimsError, ValueError):
    """A scenario file is invalid; `field` names the offending key (dotted path)."""

    def __init__(self, field: str, reason: str, *, source: str = "<scenario>") -> None:
        super().__init__(f"{source}: {field}: {reason}")
        self.field = field
        self.reason = reason
        self.source = source
