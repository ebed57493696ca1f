"""Errors of the rule core."""

from __future__ import annotations

from alerts.errors import AlertsError


class RulesError(AlertsError, ValueError):
    """Base of the errors the rule core raises."""


class RuleParameterError(RulesError):
    """A rule parameter (default or care-plan override) is unusable."""

    def __init__(self, rule_id: str, param: str, reason: str) -> None:
        super().__init__(f"{rule_id}: parameter {param!r}: {reason}")
        self.rule_id = rule_id
        self.param = param
        self.reason = reason


class ColumnsError(RulesError):
    """Reading columns given to the kernels are inconsistent (lengths, dtypes, codes)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"reading columns: {field}: {reason}")
        self.field = field
        self.reason = reason
