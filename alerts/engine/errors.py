"""Errors of the rules engine's adapters (sources, store, runners)."""

from __future__ import annotations

from alerts.errors import AlertsError


class EngineError(AlertsError):
    """Base of the errors the rules engine raises outside its pure kernels."""


class ReadingInputError(EngineError, ValueError):
    """A reading file or a row of it is unusable; names the line (1 = header; 0 = the file as a
    whole) and the column."""

    def __init__(self, line: int, column: str, reason: str) -> None:
        super().__init__(reason if line == 0 else f"line {line}, column {column}: {reason}")
        self.line = line
        self.column = column
        self.reason = reason


class StoreError(EngineError):
    """The record store could not be read or written."""
