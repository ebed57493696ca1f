"""A care team's webhook receiver for the end-to-end tests: real uvicorn on loopback, every
POST recorded as it came (duplicates included), verified with the reference Standard Webhooks
library (`standardwebhooks`) against the secret the registry issued for this endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import sqlalchemy as sa
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from careteam.secrets import SecretBox
from careteam.tables import webhook_endpoint_secrets, webhook_endpoints


@dataclass(frozen=True)
class Received:
    """One POST as it arrived, and whether its signature verified."""

    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    def event(self) -> dict[str, object]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


@dataclass
class RecordingReceiver:
    """Answers 204 to a verified POST and 401 otherwise; keeps every request."""

    db_url: str
    secrets_keys: str = ""  # the HV_SECRETS_KEYS the demo seals with
    url: str = ""
    received: list[Received] = field(default_factory=list)
    _secret: str | None = None

    def _lookup_secret(self) -> str:
        # The registry shows a new endpoint's secret once, to whoever registers it: here the
        # demo did, so the receiver reads it where the registry keeps it, sealed, and opens it
        # with the key the demo was given.
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                e, s = webhook_endpoints.c, webhook_endpoint_secrets.c
                endpoint_id, sealed = conn.execute(
                    sa.select(s.endpoint_id, s.secret)
                    .join(webhook_endpoints, e.id == s.endpoint_id)
                    .where(e.url == self.url)
                    .order_by(s.id.desc())
                ).one()
        finally:
            engine.dispose()
        return SecretBox.from_setting(self.secrets_keys).open(sealed, endpoint_id)

    async def _on_post(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self._secret is None:
            self._secret = await asyncio.to_thread(self._lookup_secret)
        try:
            Webhook(self._secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        self.received.append(Received(headers.get("webhook-id", ""), headers, body, verified))
        return Response(status_code=204 if verified else 401)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._on_post, methods=["POST"])])


@contextlib.asynccontextmanager
async def serve(receiver: RecordingReceiver) -> AsyncIterator[RecordingReceiver]:
    """Run the receiver on a free loopback port in the running event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/care-team/hooks"
    config = uvicorn.Config(receiver.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
