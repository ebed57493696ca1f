"""The gateway's composition root: settings in, adapters opened, loops run.

`python -m gateway` and `homevitals gateway run` call `main`; the `pair`, `devices` and
`unpair` commands use `open_hub` for the same wiring without the loops. This is the only
module that picks the BLE backend (`bumble_bleak.backend.backend_for`: BlueZ through
bleak's platform backend, the in-process virtual air, or a Bumble transport), configures
logging, and reads the environment (through `GatewaySettings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from bumble_bleak.backend import backend_for
from gateway.connections import Connector
from gateway.delivery import heartbeat_loop, prune_loop, publish_loop, receipt_loop
from gateway.enrolment import HubIdentity, Identity
from gateway.failpoints import Failpoints
from gateway.outbox import Backoff, Outbox
from gateway.page import create_page
from gateway.page_guard import Guard, PinFile, exposure_warning, is_loopback_host
from gateway.publisher import MqttConfig, Publisher
from gateway.registry import Registry
from gateway.samples import SampleStore
from gateway.service import Clock, Gateway, SessionTuning
from gateway.settings import GatewaySettings, require_gateway_id, with_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _NoRadio:
    ble_transport: str = "platform"  # never used: commands without a radio make no BLE calls


_NO_RADIO = _NoRadio()
PAGE_SHUTDOWN_S = 5  # open page connections get this long to finish when the hub stops
PRUNE_EVERY_S = 3600.0  # retired outbox rows are pruned hourly (after outbox_retention_s)


def utc_now() -> datetime:
    """The gateway's wall clock (the only place it is read)."""
    return datetime.now(UTC)


@dataclass
class Hub:
    """Everything `open_hub` wired together."""

    settings: GatewaySettings
    gateway: Gateway
    outbox: Outbox
    registry: Registry


@asynccontextmanager
async def open_hub(
    settings: GatewaySettings, *, air: Any = None, radio: bool = True, clock: Clock = utc_now
) -> AsyncIterator[Hub]:
    """Open the database, the BLE backend (unless `radio` is False) and the device service.

    `clock` is the time the device service lives in (sessions, receive times): the wall clock,
    or a simulation's (the demo plays weeks in minutes, and the hub must agree with the
    simulated devices' clocks). The sync schedule runs on the monotonic clock, so a wall clock
    stepped back stalls no device.

    Raises:
        BumbleBleakError: the BLE transport cannot be opened.
        sqlite3.Error: the database cannot be opened.
    """
    backends = await backend_for(
        settings if radio else _NO_RADIO, air=air, bonds_path=settings.bonds_path
    )
    outbox = Outbox(
        settings.outbox_path,
        backoff=Backoff(settings.resend_first_s, settings.resend_max_s),
        max_size_bytes=settings.outbox_max_bytes,
    )
    registry = Registry(settings.outbox_path)
    connector = Connector(
        backends.scanner,
        backends.client,
        max_connections=settings.max_connections,
        max_streams=settings.max_streams,
        attempts=settings.connect_attempts,
        connect_timeout_s=settings.connect_timeout_s,
    )
    gateway = Gateway(
        gateway_id=require_gateway_id(settings),
        connector=connector,
        registry=registry,
        outbox=outbox,
        clock=clock,
        utc_offset_min=settings.utc_offset_min,
        tuning=SessionTuning(
            pace_s=settings.pace_s,
            operation_timeout_s=settings.operation_timeout_s,
            silence_timeout_s=settings.silence_timeout_s,
            clock_set_threshold_s=settings.clock_set_threshold_s,
        ),
        failpoints=Failpoints(settings.failpoint),
        samples=SampleStore(
            settings.outbox_path,
            retention_s=settings.sample_retention_s,
            forward=settings.forward_samples,
            resend_s=settings.sample_resend_s,
        ),
    )
    try:
        yield Hub(settings, gateway, outbox, registry)
    finally:
        await gateway.stop_streams()
        if gateway.samples is not None:
            gateway.samples.close()
        registry.close()
        outbox.close()
        await backends.close()


def mqtt_config(settings: GatewaySettings) -> MqttConfig:
    """The publisher's configuration from the settings."""
    password = settings.mqtt_password
    return MqttConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=None if password is None else password.get_secret_value(),
        tls_ca=settings.mqtt_tls_ca,
        tls_cert=settings.mqtt_tls_cert,
        tls_key=settings.mqtt_tls_key,
        keepalive_s=settings.mqtt_keepalive_s,
        session_expiry_s=settings.mqtt_session_expiry_s,
    )


async def run(settings: GatewaySettings, *, air: Any = None, clock: Clock = utc_now) -> None:
    """Run the hub until cancelled: device syncs, publishing, receipts, the pairing page.

    A hub without an identity yet (never enrolled) first serves the page in enrol-only mode:
    only the enrolment-code form, behind the same guard. Once a code is redeemed there (or
    `homevitals gateway enrol` stored an identity), the hub starts with it and the full page
    takes the enrol-only page's place on the same socket: nobody restarts anything.

    `clock` is the device service's (see `open_hub`); publishing, receipts, heartbeats and
    pruning keep the wall clock.

    One cancellation (or SIGTERM) stops every loop, closes the page's listening socket and
    the adapters, and re-raises `CancelledError`.

    Raises:
        SettingsError: not enrolled, and no way to enrol here (`page_enabled` off or no
            `enrolment_url`): key ``gateway_id``.
    """
    if settings.gateway_id is None and not (settings.page_enabled and settings.enrolment_url):
        require_gateway_id(settings)
    # SIGTERM (systemd stop) ends the loops cleanly: status `offline`, bonds kept.
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    try:
        async with asyncio.TaskGroup() as tasks:
            page = _PageServer(settings, tasks) if settings.page_enabled else None
            if settings.gateway_id is None and page is not None:
                settings = await _enrol_first(settings, page)
            await _run_enrolled(settings, air, page, clock)
    finally:
        if main_task is not None:
            loop.remove_signal_handler(signal.SIGTERM)


async def _run_enrolled(
    settings: GatewaySettings, air: Any, page: _PageServer | None, clock: Clock
) -> None:
    async with (
        open_hub(settings, air=air, clock=clock) as hub,
        Publisher(
            require_gateway_id(settings),
            mqtt_config(settings),
            failpoints=hub.gateway.failpoints,
            wake=hub.gateway.wake,
        ) as publisher,
    ):
        gateway = hub.gateway
        log.info("%s: gateway running (outbox %s)", settings.gateway_id, settings.outbox_path)
        if page is not None:
            page.show(hub_page(settings, gateway, page.guard))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                publish_loop(
                    hub.outbox,
                    publisher,
                    utc_now,
                    gateway.wake,
                    max_batch_bytes=settings.max_batch_bytes,
                    failpoints=gateway.failpoints,
                    samples=gateway.samples,
                )
            )
            tasks.create_task(receipt_loop(hub.outbox, publisher, utc_now, gateway.samples))
            tasks.create_task(
                prune_loop(hub.outbox, utc_now, settings.outbox_retention_s, PRUNE_EVERY_S)
            )
            tasks.create_task(
                heartbeat_loop(
                    publisher,
                    gateway.devices,
                    utc_now,
                    settings.heartbeat_s,
                    storage_full=lambda: hub.outbox.full_since is not None,
                )
            )
            tasks.create_task(
                gateway.device_loop(
                    settings.scan_s, settings.meter_sync_interval_s, settings.scan_idle_s
                )
            )


ENROL_POLL_S = 1.0  # how often an unenrolled hub looks for an identity stored from a terminal


async def _enrol_first(settings: GatewaySettings, page: _PageServer) -> GatewaySettings:
    """Serve the enrol-only page until the hub has an identity; the settings with it."""
    enrolled = asyncio.Event()
    page.show(hub_page(settings, None, page.guard, on_enrolled=lambda _identity: enrolled.set()))
    log.warning(
        "this hub is not enrolled: type the code from the care team on the pairing page "
        "(port %d) or run `homevitals gateway enrol CODE`",
        settings.page_port,
    )
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ENROL_POLL_S):
                await enrolled.wait()
        updated = with_identity(settings)
        if updated.gateway_id is not None:
            log.info("%s: enrolled; starting", updated.gateway_id)
            return updated


class PageSwitch:
    """An ASGI app that serves whichever app it holds now: the enrol-only page, then the full
    page, on one listening socket (a browser that just typed its code finds the running hub
    when it follows the redirect, never a closed port)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the current app."""
        assert self.app is not None, "the page is served only once it has an app"
        await self.app(scope, receive, send)


class _PageServer:
    """The hub's page server: one guard (sessions, form tokens and the PIN lockout survive the
    switch from enrol-only to the full page), served from the first `show`."""

    def __init__(self, settings: GatewaySettings, tasks: asyncio.TaskGroup) -> None:
        self.settings = settings
        self.guard = page_guard(settings)
        self._switch = PageSwitch()
        self._tasks = tasks

    def show(self, app: ASGIApp) -> None:
        first = self._switch.app is None
        self._switch.app = app
        if first:
            config = server_config(self.settings, self._switch)
            self._tasks.create_task(serve_page(uvicorn.Server(config)))


def page_guard(settings: GatewaySettings, *, show: Callable[[str], None] | None = None) -> Guard:
    """The page's guard: Host/Origin/CSRF checks everywhere, and the hub PIN beyond loopback.

    Bound beyond loopback, the page needs the hub PIN: at the first such start a new PIN is
    made and shown once through `show` (standard error by default: the hub's console or
    journal), and `homevitals gateway page-pin` makes a new one. Without TLS there, a warning
    is logged at every start.
    """
    pin = None
    if not is_loopback_host(settings.page_host):
        pin = PinFile(settings.page_pin_path)
        if not pin.exists():
            new_pin = pin.create()
            (show or _to_stderr)(
                f"pairing page PIN (shown once; `homevitals gateway page-pin` makes a new one): "
                f"{new_pin[:4]} {new_pin[4:]}"
            )
    tls = settings.page_tls_cert is not None
    warning = exposure_warning(settings.page_host, tls)
    if warning is not None:
        log.warning("%s: %s", settings.gateway_id or "hub", warning)
    return Guard(pin=pin, allowed_hosts=frozenset(settings.page_allowed_hosts), tls=tls)


def hub_page(
    settings: GatewaySettings,
    gateway: Gateway | None,
    guard: Guard,
    *,
    on_enrolled: Callable[[Identity], None] | None = None,
) -> FastAPI:
    """The pairing page for `gateway` (None: enrol-only, for a hub without an identity)."""
    return create_page(
        gateway,
        default_locale=settings.locale,
        timezone=settings.timezone,
        guard=guard,
        hub=HubIdentity(settings.data_dir, settings.enrolment_url),
        on_enrolled=on_enrolled,
    )


def server_config(settings: GatewaySettings, app: ASGIApp) -> uvicorn.Config:
    """The page's uvicorn configuration: address, TLS when configured, a short shutdown."""
    return uvicorn.Config(
        app,
        host=settings.page_host,
        port=settings.page_port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=PAGE_SHUTDOWN_S,
        ssl_certfile=None if settings.page_tls_cert is None else str(settings.page_tls_cert),
        ssl_keyfile=None if settings.page_tls_key is None else str(settings.page_tls_key),
    )


def page_server_config(
    settings: GatewaySettings, gateway: Gateway, *, show: Callable[[str], None] | None = None
) -> uvicorn.Config:
    """The pairing page's server: its guard (`page_guard`: the PIN shown through `show` at the
    first start beyond loopback), TLS when configured."""
    guard = page_guard(settings, show=show)
    return server_config(settings, hub_page(settings, gateway, guard))


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def serve_page(server: uvicorn.Server) -> None:
    """Serve the pairing page until cancelled, then shut it down the way uvicorn expects.

    A cancelled `Server.serve()` skips uvicorn's shutdown, leaving the listening socket open
    (a `ResourceWarning` when it is collected, and the port still accepting connections). So
    the server runs in its own task, shielded; a cancellation sets `should_exit`, waits for
    uvicorn to close its sockets and connections (at most `timeout_graceful_shutdown`), and
    is then re-raised.
    """
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise


def configure_logging(level: str = "INFO") -> None:
    """Log lines with the device or stream id first, to stderr."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
