"""HTTP edges shared by the routes: bearer-token authentication with rate limits, error bodies.

`authenticate` is the one dependency every non-public route declares (a test enumerates the
routes): it reads the bearer token, spends one request of the token's bucket (or of the client
address's bucket when the token is missing or bad, so guessing is limited too), verifies the
token and returns the `Principal`. Errors answer with a FHIR OperationOutcome under ``/fhir``
and ``{"error", "reason"}`` elsewhere; neither ever carries a stack trace or record values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import tokens
from api.errors import ApiError, RateLimitedError, UnauthenticatedError
from api.fhir.bundle import FHIR_JSON, operation_outcome
from api.fhir_models import validated
from api.jwks import ProviderKeys
from api.ratelimit import TokenBuckets
from api.settings import Settings
from api.tokens import Principal

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="a token from `homevitals token issue`")


@dataclass(frozen=True, slots=True)
class Services:
    """What the routes need, built once by the composition root."""

    settings: Settings
    engine: sa.Engine
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    buckets: TokenBuckets
    anonymous_buckets: TokenBuckets
    provider: ProviderKeys | None = None


def services(request: Request) -> Services:
    """The app's services (dependency)."""
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str:
    """The peer address (no proxy headers are trusted)."""
    return request.client.host if request.client is not None else "unknown"


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Verify the bearer token and spend one request of its rate limit.

    Raises:
        UnauthenticatedError: no token, or one that does not verify.
        RateLimitedError: the token (or the address, without a valid token) is over its limit.
    """
    svc = services(request)
    now_s = svc.monotonic()
    if credentials is None or credentials.scheme.lower() != "bearer":
        _spend(svc.anonymous_buckets, client_address(request), now_s)
        raise UnauthenticatedError("a bearer token is required")
    token = credentials.credentials
    try:
        provider = None
        if svc.provider is not None and tokens.header_algorithm(token) != tokens.ALGORITHM:
            provider = svc.provider.key_for(token)
        principal = tokens.verify(
            token, svc.settings.token_key(), now=svc.clock(), provider=provider
        )
    except UnauthenticatedError:
        _spend(svc.anonymous_buckets, client_address(request), now_s)
        raise
    _spend(svc.buckets, principal.token_id, now_s)
    request.state.principal = principal
    return principal


def _spend(buckets: TokenBuckets, key: str, now_s: float) -> None:
    wait_s = buckets.take(key, now_s)
    if wait_s is not None:
        raise RateLimitedError(wait_s)


def _is_fhir(request: Request) -> bool:
    return request.url.path == "/fhir" or request.url.path.startswith("/fhir/")


def error_response(request: Request, status: int, code: str, reason: str) -> JSONResponse:
    """The error body for `request`: an OperationOutcome under /fhir, else a JSON object."""
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="homevitals"'
    if _is_fhir(request):
        return JSONResponse(
            operation_outcome(code, reason), status, headers=headers, media_type=FHIR_JSON
        )
    return JSONResponse({"error": code, "reason": reason}, status, headers=headers)


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
    response = error_response(request, exc.status, exc.code, exc.reason)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name the fields, never echo the input (it may be a note about a patient).
    fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
    reason = "invalid " + ", ".join(fields[:5])
    return error_response(request, 400 if _is_fhir(request) else 422, "invalid", reason)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(
        exc.status_code, "processing"
    )
    reason = {404: "no such resource or route", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)[:200]
    )
    return error_response(request, exc.status_code, code, reason)


def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A 500 for an exception nothing else handled (its type logged, never its text)."""
    # Only the type at ERROR: an exception's text may quote record values (no patient data in logs).
    log.error("%s %s: unexpected %s", request.method, request.url.path, type(exc).__name__)
    log.debug("unexpected error", exc_info=exc)
    return error_response(request, 500, "exception", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the error bodies above on `app`."""
    handlers: dict[Any, Callable[[Request, Exception], JSONResponse]] = {
        ApiError: _api_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        Exception: unexpected_error,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


FHIR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed search parameter or id (OperationOutcome)"},
    401: {"description": "no bearer token, or one that does not verify (OperationOutcome)"},
    403: {"description": "scope, compartment or consent refuses it (OperationOutcome)"},
    404: {"description": "no such resource (OperationOutcome)"},
    429: {"description": "rate limit of the token; see Retry-After (OperationOutcome)"},
}


def fhir_response(resource: Mapping[str, object], status: int = 200) -> Response:
    """A resource validated with fhir.resources, as ``application/fhir+json``."""
    body = json.dumps(validated(resource), separators=(",", ":"))
    return Response(body, status, media_type=FHIR_JSON)


def monotonic() -> float:
    """The rate limiter's clock."""
    return time.monotonic()
