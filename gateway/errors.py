"""The gateway's exception hierarchy: one base, typed subclasses carrying data as attributes."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of every error the gateway raises."""


class OutboxFullError(GatewayError):
    """The outbox could not store a session: the disk (or the outbox's size cap) is full.

    Nothing of the session was stored and the device cursor did not move, so the same records
    are fetched again on the next session once space is freed.

    Attributes:
        path: the outbox database file.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"outbox {path} is full: the session was not stored")
        self.path = path


class SettingsError(GatewayError):
    """The gateway's settings are invalid.

    Attributes:
        key: the offending setting (dotted for nested ones).
        reason: what is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"setting {key}: {reason}")
        self.key = key
        self.reason = reason


class UnknownDeviceError(GatewayError):
    """A device id is not in the pairing registry.

    Attributes:
        device_id: the id asked for.
    """

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id} is not paired")
        self.device_id = device_id


NO_MATCHING_SUBSCRIBERS = 0x10


class PublishError(GatewayError):
    """The broker did not accept a batch (refused connection or a failure PUBACK reason code).

    Attributes:
        reason: the broker's reason, in words.
        code: the PUBACK reason code, when the broker answered with one.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    @property
    def no_subscribers(self) -> bool:
        """PUBACK 0x10: the broker took it but nobody subscribes (ingest not (re)subscribed
        yet, e.g. just after a broker restart): worth retrying soon, not a failed attempt."""
        return self.code == NO_MATCHING_SUBSCRIBERS


class InvalidInputError(GatewayError, ValueError):
    """Input from the patient or the operator (page, CLI) was rejected.

    Attributes:
        field: the offending field (``"patient_id"``, ``"passkey"``).
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnrolmentError(GatewayError):
    """The hub could not be enrolled.

    Attributes:
        reason: ``"invalid_code"`` (unknown, expired, used or not for this hub: the server does
            not say which), ``"rate_limited"``, or ``"unavailable"`` (no answer, or nonsense).
    """

    def __init__(self, message: str, *, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason
