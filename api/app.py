"""The FastAPI application: FHIR R4 views under ``/fhir``, REST under ``/v1``.

`create_app` is called by the composition root (`api.cli`) with the settings, an engine and
clocks; nothing here reads the environment. Every route except ``GET /fhir/metadata`` and the
OpenAPI document declares `api.http.authenticate`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response

from api import routes_fhir, routes_fhir_record, routes_rest
from api.dashboard import routes as dashboard_routes
from api.fhir.bundle import FHIR_JSON, capability_statement
from api.http import (
    Services,
    error_response,
    fhir_response,
    install_error_handlers,
    monotonic,
    unexpected_error,
)
from api.jwks import ProviderKeys
from api.ratelimit import TokenBuckets
from api.settings import Settings

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    engine: sa.Engine,
    *,
    clock: Callable[[], datetime] = _utc_now,
    monotonic_clock: Callable[[], float] = monotonic,
) -> FastAPI:
    """Build the API bound to a record store."""
    app = FastAPI(
        title="homevitals care-team API",
        version="1",
        description=(
            "FHIR R4 views of home readings, alerts, consent and the audit trail under /fhir, "
            "and REST for alert handling, webhooks, consent and enrolment under /v1. "
            "Bearer JWTs with SMART on FHIR v1 scopes (`homevitals token issue`)."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = Services(
        settings=settings,
        engine=engine,
        clock=clock,
        monotonic=monotonic_clock,
        buckets=TokenBuckets(settings.rate_per_s, settings.rate_burst),
        anonymous_buckets=TokenBuckets(settings.rate_per_s, settings.rate_burst),
        provider=(
            ProviderKeys(settings.jwks_url, tuple(settings.jwks_algorithms.split()))
            if settings.jwks_url
            else None
        ),
    )
    install_error_handlers(app)
    max_body = settings.max_body_bytes

    @app.middleware("http")
    async def edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return error_response(
                request, 413, "too-costly", f"bodies are at most {max_body} bytes"
            )
        # The record store cannot hold a NUL character: refuse it here, not as a store failure.
        if "\x00" in request.url.path or any(
            "\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()
        ):
            return error_response(
                request, 400, "invalid", "the path or query holds a NUL character"
            )
        started = monotonic_clock()
        try:
            response = await call_next(request)
        except Exception as exc:
            response = unexpected_error(request, exc)
        # The route's template, never the path or query (they carry patient ids).
        route = request.scope.get("route")
        template = getattr(route, "path", "(no route)")
        log.info(
            "%s %s -> %d in %.1f ms",
            request.method,
            template,
            response.status_code,
            (monotonic_clock() - started) * 1000,
        )
        return response

    @app.get(
        "/fhir/metadata",
        tags=["fhir"],
        response_class=Response,
        responses={200: {"content": {FHIR_JSON: {}}, "description": "CapabilityStatement"}},
    )
    def metadata(request: Request) -> Response:
        """The CapabilityStatement (no token needed)."""
        base = str(request.base_url).rstrip("/") + "/fhir"
        return fhir_response(capability_statement(base, published=clock()))

    app.include_router(routes_fhir.router)
    app.include_router(routes_fhir_record.router)
    app.include_router(routes_rest.router)
    app.include_router(dashboard_routes.router)

    return app
