"""A local webhook receiver that verifies Standard Webhooks signatures (for integrators and the
demo; `homevitals webhook receive`).

Every POST is verified against the given secrets (several during a rotation); a valid message is
handed to `on_event` once per `webhook-id` (deliveries are at least once: retries repeat the id)
and answered 204; a repeat is answered 204 without calling `on_event`; an invalid one gets 401
with the reason. Bodies over 1 MiB are refused with 413.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.delivery import signing
from alerts.delivery.errors import InvalidFieldError

MAX_BODY_BYTES = 1 << 20
REMEMBERED_IDS = 10_000

EventHandler = Callable[[str, object], None]


def create_receiver_app(secrets: Sequence[str], on_event: EventHandler) -> Starlette:
    """A Starlette app that verifies, deduplicates and hands events to `on_event(id, body)`.

    Raises:
        InvalidFieldError: no secret given (field ``"secrets"``).
    """
    if not secrets:
        raise InvalidFieldError("secrets", "give at least one whsec_ secret")
    seen: OrderedDict[str, None] = OrderedDict()

    async def receive(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            event = signing.verify(body, dict(request.headers), secrets)
        except InvalidFieldError as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        webhook_id = request.headers["webhook-id"]
        if webhook_id not in seen:
            seen[webhook_id] = None
            if len(seen) > REMEMBERED_IDS:
                seen.popitem(last=False)
            on_event(webhook_id, event)
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
