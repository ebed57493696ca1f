"""The enrolment endpoint a hub redeems its code at (FastAPI; `homevitals enrolment serve`).

``POST /v1/enrol`` with ``{"code": "ABCDE-FGHJK"}`` (and, from a hub that is already enrolled,
``"gateway_id"``: then only a code made for that hub is accepted, and it adds its patients).
Answers 200 with the hub's identity (gateway id, broker user name, a broker password for a new
hub, the patients it serves by short name); 403 ``{"detail": "invalid_code"}`` for every bad
code alike (unknown, expired, used, made for another hub); 429 with ``Retry-After`` when the
source made too many failed attempts; 422 for a body that is not of this form. The source
address is the peer's (put the endpoint behind TLS; a proxy in front must be the only peer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from careteam import enrolment, enrolment_store
from careteam.enrolment_store import BrokerAccounts, Enrolment, Refusal

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
) -> APIRouter:
    """The enrolment route, for mounting in a larger app (the care-team API) or `create_app`."""
    router = APIRouter()
    limits = policy or enrolment.AttemptPolicy()

    @router.post("/v1/enrol", response_model=EnrolResponse)
    def enrol(body: EnrolRequest, request: Request) -> EnrolResponse | JSONResponse:
        source = request.client.host if request.client is not None else "unknown"
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
) -> FastAPI:
    """A standalone app serving only the enrolment route."""
    app = FastAPI(title="homevitals hub enrolment", docs_url=None, redoc_url=None)
    app.include_router(create_router(engine, accounts, clock, policy))
    return app
