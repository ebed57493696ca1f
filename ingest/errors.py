"""The ingest package's exception hierarchy.

Errors carry what went wrong as attributes, so the layer that handles them (a log line, the
CLI's exit message) can say so without parsing a message.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by the ingest package."""


class IngestConfigError(IngestError):
    """A setting is missing, malformed or still a placeholder.

    Attributes:
        key: the environment variable to set (``"HV_INGEST_DB_URL"``).
        reason: what is wrong with it, in words.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class StoreError(IngestError):
    """The record store refused or failed a write; the batch was not committed.

    Attributes:
        retry_after_s: how long the caller should wait before retrying the same batch.
    """

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MirrorError(IngestError):
    """The time-series server did not accept a batch; the cursor was not advanced.

    Attributes:
        status: the HTTP status, or None when the server could not be reached.
        retry_after_s: how long to wait before retrying.
    """

    def __init__(self, message: str, status: int | None, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
