"""Errors of the API package (one base exception per package).

Each error carries what an HTTP answer needs (status, a FHIR issue code, words for a person)
and never patient data: messages name parameters and rules, not values read from the record.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class of every error raised by the api package.

    Attributes:
        status: the HTTP status the error answers with.
        code: the FHIR ``OperationOutcome.issue.code`` (``"invalid"``, ``"forbidden"``...).
        reason: what was wrong, in words (no patient data).
    """

    status = 500
    code = "exception"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnauthenticatedError(ApiError):
    """No bearer token, or one that does not verify (signature, issuer, audience, times)."""

    status = 401
    code = "login"


class ForbiddenError(ApiError):
    """The token is valid but does not allow this (scope, compartment, role)."""

    status = 403
    code = "forbidden"


class ConsentRequiredError(ForbiddenError):
    """The patient has no current consent grant covering this access for the caller's team.

    Attributes:
        kind: the data kind the access needed (``"glucose"``, ``"alerts"``...).
    """

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class InvalidRequestError(ApiError):
    """A malformed search parameter, path id or body.

    Attributes:
        field: the parameter or field that was wrong.
    """

    status = 400
    code = "invalid"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class NotFoundError(ApiError):
    """No resource with that id (or none the caller may know of)."""

    status = 404
    code = "not-found"


class ConflictError(ApiError):
    """The request conflicts with the record's state (an alert already resolved...)."""

    status = 409
    code = "conflict"


class RateLimitedError(ApiError):
    """Too many requests for this token (or address).

    Attributes:
        retry_after_s: whole seconds until a request will be accepted again.
    """

    status = 429
    code = "throttled"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many requests")
        self.retry_after_s = retry_after_s


class UnavailableError(ApiError):
    """A dependency (the record store, the audit trail) failed: fail closed."""

    status = 503
    code = "transient"


class TokenError(ApiError, ValueError):
    """A token could not be issued (bad scope string, unknown subject...)."""

    status = 400
    code = "invalid"


class ApiConfigError(ApiError, ValueError):
    """A setting is missing, malformed or a placeholder.

    Attributes:
        field: the environment variable to fix.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
