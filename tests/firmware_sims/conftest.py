"""Fixtures: a virtual air per test, and a small echo peripheral built on the real firmware base.

The echo peripheral is real firmware (a Bumble GATT server on the air), used to exercise every
GATT procedure the bleak backend offers; the meters and cuffs are tested through the same path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bumble.att import Attribute, AttributeValueV2
from bumble.gatt import Characteristic, Service

from firmware_sims.air import VirtualAir
from firmware_sims.peripheral import (
    ENCRYPTED_WRITE,
    READABLE,
    WRITEABLE,
    Identity,
    Security,
    SimulatedPeripheral,
)
from firmware_sims.radio_timing import LinkTiming

ECHO_TIMING = LinkTiming(att_mtu=517, data_length=251)  # a 5.x part: everything at its largest
ECHO_SERVICE = "7e570000-0000-4000-8000-00000000e540"
ECHO_VALUE = "7e570001-0000-4000-8000-00000000e540"
ECHO_NOTIFY = "7e570002-0000-4000-8000-00000000e540"
ECHO_INDICATE = "7e570003-0000-4000-8000-00000000e540"
SECRET = "7e570004-0000-4000-8000-00000000e540"


class EchoPeripheral(SimulatedPeripheral):
    """Stores what is written; notifies/indicates on demand; one attribute needs encryption."""

    advertised_services = (0x180F,)

    def build_services(self) -> list[Service]:
        services = super().build_services()
        self.written: list[bytes] = []
        self.value = b"hello"
        props = Characteristic.Properties
        self.echo = Characteristic(
            ECHO_VALUE,
            props.READ | props.WRITE | props.WRITE_WITHOUT_RESPONSE,
            READABLE | WRITEABLE,
            AttributeValueV2(read=lambda _b: self.value, write=self._on_write),
        )
        self.notifying = Characteristic(ECHO_NOTIFY, props.NOTIFY, READABLE, b"")
        self.indicating = Characteristic(ECHO_INDICATE, props.INDICATE, READABLE, b"")
        self.secret = Characteristic(
            SECRET,
            props.READ | props.WRITE,
            Attribute.Permissions.READ_REQUIRES_ENCRYPTION | READABLE | WRITEABLE | ENCRYPTED_WRITE,
            b"s3cret",
        )
        services.append(
            Service(ECHO_SERVICE, [self.echo, self.notifying, self.indicating, self.secret])
        )
        return services

    def _on_write(self, _bearer: object, value: bytes) -> None:
        self.written.append(bytes(value))
        self.value = bytes(value)


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.3) as the_air:
        yield the_air


def make_echo(
    air: VirtualAir,
    *,
    address: str = "F0:00:00:00:00:01",
    security: Security = Security.JUST_WORKS,
    **kwargs: object,
) -> EchoPeripheral:
    return EchoPeripheral(
        air,
        local_name=f"Echo-{address[-2:]}",
        address=address,
        identity=Identity("Acme Medical", "Echo 1", f"SN{address[-2:]}"),
        security=security,
        link_timing=kwargs.pop("link_timing", ECHO_TIMING),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
