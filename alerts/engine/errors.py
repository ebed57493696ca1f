"""Errors of the rules engine's adapters (sources, store, runners)."""

from __future__ import annotations

from alerts.errors import AlertsError


class EngineError(AlertsError):
    """Base of the errors the rules engine raises outside its pure kernels."""


class ReadingInputError(EngineError, ValueError):
    """A row of a reading file is unusable; names the line (1 = header) and the column."""

    def __init__(self, line: int, column: str, reason: str) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.line = line
        self.column = column
        self.reason = reason


class StoreError(EngineError):
    """The record store could not be read or written."""
