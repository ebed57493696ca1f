"""The devices package's exception hierarchy.

Every error raised on untrusted input names what was wrong, as attributes, so the layer that
handles it (quarantine, a log line, an API response) can say so without parsing a message.
"""

from __future__ import annotations


class DevicesError(Exception):
    """Base class of every error raised by the devices package."""


class ReadingValidationError(DevicesError, ValueError):
    """Untrusted JSON did not describe a valid canonical reading.

    Attributes:
        field: dotted path of the offending field (``"values.glucose_mmol_l"``), or ``"$"``
            for the document itself.
        reason: what is wrong with it, in words.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
