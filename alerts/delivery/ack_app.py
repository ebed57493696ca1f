"""The acknowledgement callback: a small FastAPI app behind the `acknowledge` link of events.

A receiver POSTs ``{"member_id": "..."}`` to the link it got in a high-priority event. The token
in the path (`ack_token`) names the alert and the team the event was sent to; the member must be
an active member of that team, which must follow the alert's patient. Until the API issue brings
bearer tokens per member, possession of the signed link is the credential (like an e-mail
"acknowledge" link), so links expire (`LinkConfig.ack_ttl`).

Responses: 200 ``{"alert_id", "acknowledged": true, "first": bool}``; 403 for a bad or expired
token or a member who may not acknowledge; 404 for an unknown alert or member; 422 for a body
that is not ``{"member_id": str}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from alerts.delivery import ack_token
from alerts.delivery.confirmation import acknowledge
from alerts.delivery.errors import AcknowledgementRefusedError, AckTokenError, NotFoundError


class AckRequest(BaseModel):
    """Body of an acknowledgement callback."""

    model_config = ConfigDict(extra="forbid")
    member_id: str = Field(min_length=1, max_length=64)


class AckResponse(BaseModel):
    """Result of an acknowledgement callback."""

    alert_id: str
    acknowledged: bool
    first: bool


def create_app(engine: sa.Engine, ack_key: bytes, clock: Callable[[], datetime]) -> FastAPI:
    """The acknowledgement app, bound to a database and the token key.

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """
    if len(ack_key) < ack_token.MIN_KEY_BYTES:
        raise ValueError("ack_key: needs at least 32 bytes")
    app = FastAPI(title="homevitals alert acknowledgement", docs_url=None, redoc_url=None)

    @app.post("/ack/{token}")
    def post_ack(token: str, body: AckRequest) -> AckResponse:
        now = clock()
        try:
            claims = ack_token.verify(token, ack_key, now)
            with engine.begin() as conn:
                first = acknowledge(
                    conn, claims.alert_id, body.member_id, now, team_id=claims.team_id
                )
        except (AckTokenError, AcknowledgementRefusedError) as exc:
            raise HTTPException(403, {"field": exc.field, "reason": exc.reason}) from exc
        except NotFoundError as exc:
            raise HTTPException(404, {"field": exc.field, "reason": "not found"}) from exc
        return AckResponse(alert_id=claims.alert_id, acknowledged=True, first=first)

    return app
