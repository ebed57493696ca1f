"""Errors of the care-team record (pure: no I/O).

Every error raised on input names what was wrong as attributes, so the layer that handles it
(an HTTP response, the CLI, quarantine) can say so without parsing text.
"""

from __future__ import annotations


class CareteamError(Exception):
    """Base class of every error raised by the careteam package."""


class InvalidFieldError(CareteamError, ValueError):
    """A value given to the record is not acceptable; nothing was written.

    Attributes:
        field: name of the offending field (``"timezone"``, ``"data_kinds"``, ``"period_end"``).
        reason: what is wrong with it, in words.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(CareteamError, LookupError):
    """A referenced record does not exist; nothing was written.

    Attributes:
        field: the reference that did not resolve (``"patient_id"``, ``"team_id"``...).
        value: the value given.
    """

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: no record {value!r}")
        self.field = field
        self.value = value


class EnrolmentRefusedError(CareteamError):
    """An enrolment code was refused. The message is the same for unknown, expired and used codes.

    Attributes:
        reason: ``"invalid_code"`` (unknown, expired or already used: deliberately not told
            apart to the caller) or ``"rate_limited"``.
        retry_after_s: for ``"rate_limited"``, when to try again.
    """

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"enrolment refused: {reason}")
        self.reason = reason
        self.retry_after_s = retry_after_s


class SecretsError(CareteamError):
    """A stored secret cannot be sealed or opened (no key, unknown key id, tampered text)."""


class BrokerCredentialsError(CareteamError):
    """The broker's credentials could not be written or the broker could not be told."""
