"""The enrolment endpoint a hub redeems its code at (FastAPI; `homevitals enrolment serve`).

``POST /v1/enrol`` with ``{"code": "ABCDE-FGHJK"}`` (and, from a hub that is already enrolled,
``"gateway_id"``: then only a code made for that hub is accepted, and it adds its patients).
Answers 200 with the hub's identity (gateway id, broker user name, a broker password for a new
hub, the patients it serves by short name); 403 ``{"detail": "invalid_code"}`` for every bad
code alike (unknown, expired, used, made for another hub); 429 with ``Retry-After`` when the
source made too many failed attempts; 422 for a body that is not of this form. The source
is the peer's address, or, when the peer is one of `trusted_proxies`, the client its
`X-Forwarded-For` names (`careteam.forwarded`): put the endpoint behind TLS, and name the
reverse proxy in front, or every hub behind it counts as one source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from careteam import enrolment, enrolment_store
from careteam.enrolment_store import BrokerAccounts, Enrolment, Refusal
from careteam.forwarded import Network, client_address

log = logging.getLogger(__name__)


class EnrolRequest(BaseModel):
    """What a hub sends."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32)
    gateway_id: str | None = Field(default=None, min_length=1, max_length=64)


class HubPatientBody(BaseModel):
    """A patient as the hub shows them."""

    patient_id: str
    short_name: str


class EnrolResponse(BaseModel):
    """The hub's identity."""

    gateway_id: str
    mqtt_username: str
    mqtt_password: str | None
    patients: list[HubPatientBody]


def create_router(
    engine: sa.Engine,
    accounts: BrokerAccounts,
    clock: Callable[[], datetime],
    policy: enrolment.AttemptPolicy | None = None,
    trusted_proxies: Sequence[Network] = (),
) -> APIRouter:
    """The enrolment route, for mounting in a larger app (the care-team API) or `create_app`.

    Serve it with the server's own proxy-header handling off (uvicorn's ``proxy_headers``):
    the source is decided here, from the TCP peer and `trusted_proxies`.
    """
    router = APIRouter()
    limits = policy or enrolment.AttemptPolicy()
    proxies = tuple(trusted_proxies)

    @router.post("/v1/enrol", response_model=EnrolResponse)
    def enrol(body: EnrolRequest, request: Request) -> EnrolResponse | JSONResponse:
        peer = request.client.host if request.client is not None else "unknown"
        source = client_address(peer, request.headers.getlist("x-forwarded-for"), proxies)
        with engine.begin() as conn:
            result = enrolment_store.redeem(
                conn,
                body.code,
                source=source,
                at=clock(),
                accounts=accounts,
                policy=limits,
                hub_gateway_id=body.gateway_id,
            )
        if isinstance(result, Refusal):
            if result.reason == "rate_limited" and result.retry_after is not None:
                retry = str(int(result.retry_after.total_seconds()))
                return JSONResponse(
                    {"detail": "rate_limited"}, status_code=429, headers={"Retry-After": retry}
                )
            return JSONResponse({"detail": "invalid_code"}, status_code=403)
        return _response(result)

    return router


def _response(result: Enrolment) -> EnrolResponse:
    return EnrolResponse(
        gateway_id=result.gateway_id,
        mqtt_username=result.mqtt_username,
        mqtt_password=result.mqtt_password,
        patients=[
            HubPatientBody(patient_id=p.patient_id, short_name=p.short_name)
            for p in result.patients
        ],
    )


def create_app(
    engine: sa.Engine,
    accounts: BrokerAccounts,
    clock: Callable[[], datetime],
    policy: enrolment.AttemptPolicy | None = None,
    trusted_proxies: Sequence[Network] = (),
) -> FastAPI:
    """A standalone app serving only the enrolment route."""
    app = FastAPI(title="homevitals hub enrolment", docs_url=None, redoc_url=None)
    app.include_router(create_router(engine, accounts, clock, policy, trusted_proxies))
    return app
