"""The patients' home hubs, in this process on the virtual air (the air is in-process): each is
enrolled with a code the care team made, redeemed at the enrolment endpoint as
`homevitals gateway enrol CODE` does (which gives it its gateway id and broker account, kept in
its data directory's identity file),
pairs its patient's meter and cuff (with the passkey where the device shows one), and then runs
as deployed (`gateway.app.run`): syncing the devices, publishing to the broker, serving its
pairing page. The device side of each hub lives on the story's clock. Each hub has its own
Bluetooth adapter on the shared air (`HubRadio`), as two homes have two hubs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bumble_bleak.central import CentralRadio
from firmware_sims.air import VirtualAir
from gateway.app import open_hub
from gateway.app import run as run_gateway
from gateway.enrolment import Identity
from gateway.enrolment import redeem as redeem_code
from gateway.service import PAIRED_OUTCOMES
from gateway.settings import GatewaySettings, load_settings
from homevitals.demo_devices import Home, device_label
from homevitals.demo_errors import DemoError
from homevitals.demo_procs import free_port
from homevitals.demo_record import issue_enrolment_code
from homevitals.demo_report import Say

log = logging.getLogger(__name__)

GATEWAY_STOP_S = 10.0  # one cancel stops a hub; this only bounds the wait
DISCOVER_S = 2.0


class HubRadio:
    """One hub's own central (a Bluetooth adapter) on the shared virtual air, built on first
    use (`bumble_bleak.backend.VirtualRadio`): two hubs sharing the air's one central would
    scan and connect over each other."""

    def __init__(self, air: VirtualAir, address: str) -> None:
        self._air = air
        self._address = address
        self._central: CentralRadio | None = None
        self._lock = asyncio.Lock()

    async def central(self) -> CentralRadio:
        """The hub's adapter."""
        async with self._lock:
            if self._central is None:
                device = self._air.new_device(f"hub-{self._address}", self._address)
                self._central = await CentralRadio.start(device)
            return self._central


@dataclass
class Hub:
    """One patient's hub."""

    home: Home
    directory: Path
    radio: HubRadio
    enrolment: Identity | None = None
    settings: GatewaySettings | None = None
    task: asyncio.Task[None] | None = None
    paired: list[str] = field(default_factory=list)

    @property
    def gateway_id(self) -> str:
        """The id enrolment gave the hub."""
        assert self.enrolment is not None
        return self.enrolment.gateway_id

    @property
    def page_url(self) -> str | None:
        """The pairing page's address (loopback)."""
        s = self.settings
        return None if s is None or not s.page_enabled else f"http://{s.page_host}:{s.page_port}/"


def hub_settings(hub: Hub, mqtt_port: int, page: bool) -> GatewaySettings:
    """The hub's settings: the demo's broker, the virtual radio, timings for a story that runs
    thousands of times faster than life; its gateway id and broker account come from the
    identity enrolment stored in its data directory."""
    story = hub.home.story
    return load_settings(
        None,
        data_dir=hub.directory,
        enrolment_url=None,
        timezone=story.timezone,
        locale=story.page_locale,
        mqtt_host="127.0.0.1",
        mqtt_port=mqtt_port,
        ble_transport="virtual",
        scan_s=0.7,
        scan_idle_s=0.3,
        meter_sync_interval_s=0.0,
        pace_s=0.0,
        silence_timeout_s=1.5,
        resend_first_s=5.0,
        resend_max_s=30.0,
        page_enabled=page,
        page_port=free_port(),
    )


async def enrol(hub: Hub, db_url: str, member_id: str, enrolment_url: str, say: Say) -> None:
    """The care team makes an enrolment code for the patient; the hub redeems it.

    Raises:
        EnrolmentError: the code was refused, or the endpoint did not answer.
        CareteamError: a record write was refused.
    """
    story = hub.home.story
    code = await asyncio.to_thread(issue_enrolment_code, db_url, story.patient_id, member_id)
    say(f"{story.display_name}: the clinic's nurse made hub enrolment code {code}")
    hub.enrolment = await asyncio.to_thread(redeem_code, enrolment_url, code, hub.directory)
    served = ", ".join(p.short_name for p in hub.enrolment.patients)
    say(
        f"{story.display_name}: the hub redeemed it at the enrolment endpoint "
        f"(`homevitals gateway enrol`): gateway id {hub.enrolment.gateway_id}, its own broker "
        f"account, serving {served}"
    )


async def pair(hub: Hub, clock: Callable[[], datetime], say: Say) -> None:
    """Pair the home's devices to the patient (as the patient does on the pairing page).

    Raises:
        DemoError: a device could not be paired.
    """
    assert hub.settings is not None
    home, story = hub.home, hub.home.story
    hub.directory.mkdir(parents=True, exist_ok=True)
    async with open_hub(hub.settings, air=hub.radio, clock=clock) as opened:
        await opened.gateway.discover(DISCOVER_S)
        for device in home.devices:
            passkey = home.passkeys.get(device.address.upper())
            how = (
                f"passkey {passkey:06d} shown on the device"
                if passkey is not None
                else "just works"
            )
            result = await opened.gateway.pair(device.address, home.patient_id, passkey=passkey)
            name = device_label(device)
            if not (result.identified and result.outcome in PAIRED_OUTCOMES):
                raise DemoError(f"pairing {name} ended {result.outcome}: {result.detail}")
            held = (
                f"{result.stored} readings back-filled" if result.stored else "nothing stored yet"
            )
            say(f"{story.display_name}: paired {name} [{how}]: bonded, {held}")
            hub.paired.append(name)


def start(hub: Hub, clock: Callable[[], datetime]) -> None:
    """Run the hub as deployed until `stop`."""
    assert hub.settings is not None
    hub.task = asyncio.create_task(
        run_gateway(hub.settings, air=hub.radio, clock=clock), name=f"hub {hub.home.patient_id}"
    )


def failed(hub: Hub) -> str | None:
    """Why a running hub stopped, if it did."""
    task = hub.task
    if task is None or not task.done():
        return None
    exc = task.exception() if not task.cancelled() else None
    return f"the hub of {hub.home.story.display_name} stopped: {exc!r}"


async def stop(hub: Hub) -> None:
    """Cancel the hub once and wait for it, at most `GATEWAY_STOP_S`."""
    task = hub.task
    if task is None:
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=GATEWAY_STOP_S)
    if not done:
        log.warning("a hub did not stop within %s s", GATEWAY_STOP_S)
        return
    if not task.cancelled() and task.exception() is not None:
        log.warning("a hub ended with %r", task.exception())
