"""Bonds survive a restart of the central on a Bumble transport (the hub's data directory)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError

from bumble_bleak.backend import radio_backends
from bumble_bleak.central import CentralRadio
from firmware_sims.air import VirtualAir
from firmware_sims.hci_bridge import open_hci_endpoint
from tests.firmware_sims.conftest import SECRET, make_echo

ADDRESS = "F0:00:00:00:00:01"


async def _read_secret(radio: CentralRadio, *, pair: bool) -> bytearray:
    async def provide() -> CentralRadio:
        return radio

    _, client_cls = radio_backends(provide)
    async with BleakClient(ADDRESS, backend=client_cls, pair=pair, timeout=10) as client:
        return await client.read_gatt_char(SECRET)


async def test_a_bond_made_before_a_restart_still_encrypts_the_link(
    air: VirtualAir, tmp_path: Path
) -> None:
    echo = make_echo(air)
    await echo.power_on()
    endpoint = await open_hci_endpoint(air)
    bonds = tmp_path / "hub" / "bonds.json"
    try:
        first = await CentralRadio.open(endpoint.spec, bonds_path=bonds)
        try:
            assert await _read_secret(first, pair=True) == bytearray(b"s3cret")
        finally:
            await first.close()
        await asyncio.sleep(1.0)  # the HCI bridge notices a host leaving on its next watch
        assert stat.S_IMODE(bonds.stat().st_mode) == 0o600  # keys are secrets
        # A new central (the hub restarted): no pairing, yet the link is encrypted.
        second = await CentralRadio.open(endpoint.spec, bonds_path=bonds)
        try:
            assert await _read_secret(second, pair=False) == bytearray(b"s3cret")
        finally:
            await second.close()
        await asyncio.sleep(1.0)
        # Without the file, the same restart has forgotten the bond: the secret is refused.
        third = await CentralRadio.open(endpoint.spec)
        try:
            with pytest.raises(BleakGATTProtocolError):
                await _read_secret(third, pair=False)
        finally:
            await third.close()
    finally:
        await endpoint.close()
