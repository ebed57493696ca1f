"""A real uvicorn webhook receiver on loopback whose answers a test scripts.

Each request takes the next behaviour planned for its path (`plan`; default: 204): ``"ok"``,
``"status:500"``, ``"status:429:retry-after=7"``, ``"redirect"`` (301 to /moved on the same
server), ``"hang"`` (sleeps past the worker's timeout), ``"big"`` (a 1 MiB 200 response),
``"drip"`` (a 200 whose body trickles for 4 s). Every request that reached the app is recorded
with its path, headers and body. The server can be stopped and started again on the same port
(the "receiver down, then back" case).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.support.servers import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    behaviour: str


@dataclass
class ScriptedReceiver:
    port: int = field(default_factory=free_port)
    script: dict[str, deque[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hang_s: float = 3.0
    host: str = "127.0.0.1"
    _server: UvicornThread | None = None

    def url(self, path: str = "/hook") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def plan(self, path: str, *behaviours: str) -> None:
        self.script.setdefault(path, deque()).extend(behaviours)

    def clear(self) -> None:
        self.script.clear()
        self.received.clear()

    def bodies(self, path: str | None = None) -> list[bytes]:
        return [r.body for r in self.received if path is None or r.path == path]

    async def _handle(self, request: Request) -> Response:
        queue = self.script.get(request.url.path)
        behaviour = queue.popleft() if queue else "ok"
        body = await request.body()
        self.received.append(Received(request.url.path, dict(request.headers), body, behaviour))
        if behaviour == "ok":
            return Response(status_code=204)
        if behaviour == "redirect":
            return Response(status_code=301, headers={"location": self.url("/moved")})
        if behaviour == "hang":
            await asyncio.sleep(self.hang_s)
            return Response(status_code=204)
        if behaviour == "drip":
            return StreamingResponse(self._drip(), status_code=200)
        if behaviour == "big":
            return Response(b"x" * (1 << 20), status_code=200)
        parts = behaviour.split(":")
        assert parts[0] == "status", behaviour
        headers = {}
        if len(parts) > 2:
            name, _, value = parts[2].partition("=")
            headers[name] = value
        return Response(status_code=int(parts[1]), headers=headers)

    async def _drip(self) -> AsyncIterator[bytes]:
        for _ in range(20):  # 1 byte every 0.2 s: each read is quick, the whole is too slow
            yield b"."
            await asyncio.sleep(0.2)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])

    def start(self) -> None:
        self._server = UvicornThread(self.app(), self.port, self.host)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class UvicornThread:
    """Any ASGI app served by a real uvicorn on 127.0.0.1:port, in a thread of the test."""

    app: ASGIApp
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "server did not start"
            assert self._thread.is_alive(), "server thread died"
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None
            self._thread = None
