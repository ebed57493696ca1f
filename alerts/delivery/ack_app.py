"""The acknowledgement callback: a small FastAPI app behind the per-member links of events.

A high-priority event carries one link per member its team pages (`links.acknowledge_members`);
the member (or their system) POSTs to their own link, with no body. The token in the path names
the event, the alert, the team and the member, so a link acknowledges as exactly that member;
each link works once; the acknowledgement records the caller's address and the link used, and
is audited. Possession of the link is the credential (like an e-mail "acknowledge" link), so
links expire (`LinkConfig.ack_ttl`).

Responses: 200 ``{"alert_id", "acknowledged": true, "first": bool}``; for anything else (a
malformed, forged, expired or used link, an unknown alert, a member who is inactive or whose
team may no longer acknowledge) one and the same 403 ``{"detail": "acknowledgement refused"}``,
so a link holder learns nothing about which members, alerts or teams exist. The reason is
logged, and audited when the link names a real alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alerts.delivery import ack_token
from alerts.delivery.confirmation import acknowledge_by_link
from alerts.delivery.errors import AcknowledgementRefusedError, AckTokenError, NotFoundError
from alerts.delivery.tables import alert_confirmations
from careteam import audit_store
from careteam.audit import AuditRecord

log = logging.getLogger(__name__)

REFUSED: Final = {"detail": "acknowledgement refused"}


class AckResponse(BaseModel):
    """Result of an acknowledgement callback."""

    alert_id: str
    acknowledged: bool
    first: bool


def _audit_refusal(
    engine: sa.Engine, claims: ack_token.AckClaims, reason: str, at: datetime, address: str
) -> None:
    c = alert_confirmations.c
    with engine.begin() as conn:
        patient = conn.execute(
            sa.select(c.patient_id).where(c.alert_id == claims.alert_id)
        ).scalar()
        if patient is None:
            return
        audit_store.append(
            conn,
            AuditRecord(
                actor_kind="member",
                actor_id=claims.member_id[:64],
                action="alert.acknowledge",
                outcome="denied",
                patient_id=patient,
                entity_kind="alert",
                entity_id=claims.alert_id,
                source=address,
                detail={"via": "link", "reason": reason},
            ),
            at,
        )


def create_app(engine: sa.Engine, ack_key: bytes, clock: Callable[[], datetime]) -> FastAPI:
    """The acknowledgement app, bound to a database and the token key.

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """
    if len(ack_key) < ack_token.MIN_KEY_BYTES:
        raise ValueError("ack_key: needs at least 32 bytes")
    app = FastAPI(title="homevitals alert acknowledgement", docs_url=None, redoc_url=None)

    @app.post("/ack/{token}", response_model=AckResponse)
    def post_ack(token: str, request: Request) -> AckResponse | JSONResponse:
        now = clock()
        address = request.client.host if request.client is not None else "unknown"
        try:
            claims = ack_token.verify(token, ack_key, now)
        except AckTokenError as exc:
            log.info("acknowledgement link refused: %s", exc.reason)
            return JSONResponse(REFUSED, status_code=403)
        try:
            with engine.begin() as conn:
                first = acknowledge_by_link(conn, claims, token, now, address)
        except (AcknowledgementRefusedError, NotFoundError) as exc:
            reason = exc.reason if isinstance(exc, AcknowledgementRefusedError) else str(exc)
            log.info("acknowledgement of alert %s refused: %s", claims.alert_id, reason)
            _audit_refusal(engine, claims, reason, now, address)
            return JSONResponse(REFUSED, status_code=403)
        return AckResponse(alert_id=claims.alert_id, acknowledged=True, first=first)

    return app
