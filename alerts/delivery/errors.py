"""Errors of webhook delivery.

Every error raised on untrusted input (a URL a care team registered, an acknowledgement token a
receiver posted back, an event the engine handed over) names what was wrong as attributes, so the
layer that handles it (an HTTP response, the CLI, quarantine) can say so without parsing text.
`InvalidFieldError` and `NotFoundError` are also the care-team record's (`careteam.errors`), so
one handler catches a bad field whichever package found it.
"""

from __future__ import annotations

from alerts.errors import AlertsError
from careteam import errors as record_errors


class DeliveryError(AlertsError):
    """Base class of every error raised by alerts.delivery."""


class InvalidFieldError(DeliveryError, record_errors.InvalidFieldError):
    """A value given to delivery or the care-team record is not acceptable.

    Attributes:
        field: name of the offending field (``"url"``, ``"event_types"``, ``"member_id"``).
        reason: what is wrong with it, in words.
    """

    def __init__(self, field: str, reason: str) -> None:
        record_errors.InvalidFieldError.__init__(self, field, reason)


class UnsafeUrlError(InvalidFieldError):
    """A webhook URL, or an address it resolves to, is refused by the SSRF guard.

    Attributes:
        field: ``"url"`` (scheme, host, port, credentials) or ``"url.address"`` (a resolved
            address).
        reason: why it was refused (``"loopback address 127.0.0.1"``...).
    """


class NotFoundError(DeliveryError, record_errors.NotFoundError):
    """A referenced record does not exist.

    Attributes:
        field: the reference that did not resolve (``"team_id"``, ``"alert_id"``...).
        value: the value given.
    """

    def __init__(self, field: str, value: str) -> None:
        record_errors.NotFoundError.__init__(self, field, value)


class AckTokenError(InvalidFieldError):
    """An acknowledgement callback token is malformed, forged or expired."""


class AcknowledgementRefusedError(InvalidFieldError):
    """A member may not acknowledge this alert (not on a team that follows the patient)."""
