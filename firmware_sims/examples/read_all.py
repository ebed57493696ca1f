"""A plain bleak script: find glucose meters and blood-pressure cuffs, bond, read everything.

    python -m firmware_sims.examples.read_all tcp-client:127.0.0.1:7700   # a `sim run` air
    python -m firmware_sims.examples.read_all platform                    # real devices (BlueZ)

Everything below the backend choice is ordinary bleak: scan for the Glucose (0x1808) and Blood
Pressure (0x1810) services, connect with pairing, then for a meter subscribe to 0x2A18/0x2A34 and
0x2A52 and write "report all stored records" (01 01); for a cuff subscribe to 0x2A35 and wait
for the stored readings. Passkeys are read from the terminal.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice

from bumble_bleak.backend import BleakBackends, backend_for
from devices.codecs import (
    BloodPressureMeasurement,
    DecodeError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
)

GLUCOSE_SERVICE = "00001808-0000-1000-8000-00805f9b34fb"
BP_SERVICE = "00001810-0000-1000-8000-00805f9b34fb"
MEASUREMENT, CONTEXT, RACP = (f"00002a{u}-0000-1000-8000-00805f9b34fb" for u in ("18", "34", "52"))
BPM = "00002a35-0000-1000-8000-00805f9b34fb"
QUIET_S = 2.0  # a cuff has sent its memory when it stays quiet this long


@dataclass(frozen=True)
class _Settings:
    ble_transport: str


def describe(uuid: str, data: bytes, profile: str | None) -> str:
    """One line for a received record (or why it does not decode)."""
    try:
        if uuid == MEASUREMENT:
            g = GlucoseMeasurement.from_bytes(data)
            return (
                f"glucose #{g.sequence_number} at {g.user_facing_time}: "
                f"{g.concentration_mg_dl} mg/dL (type {g.type})"
            )
        if uuid == CONTEXT:
            c = GlucoseMeasurementContext.from_bytes(data)
            return f"  context #{c.sequence_number}: meal {c.meal}"
        b = BloodPressureMeasurement.from_bytes(data, profile=profile)
        pulse = None if b.pulse_rate is None else b.pulse_rate.value
        return (
            f"BP {b.systolic.value}/{b.diastolic.value} mmHg pulse {pulse} user {b.user_id} "
            f"at {b.time_stamp} status {b.measurement_status}"
        )
    except DecodeError as exc:
        return f"undecodable {data.hex()}: {exc}"


async def read_device(device: BLEDevice, service: str, backends: BleakBackends) -> list[str]:
    """Bond with one device and read all its records."""
    lines: list[str] = []
    profile = "beurer-bm" if (device.name or "").startswith("BM") else None
    done = asyncio.Event()
    quiet = asyncio.Event()

    def on_data(char: BleakGATTCharacteristic, data: bytearray) -> None:
        quiet.set()
        if char.uuid == RACP:
            lines.append(f"RACP response {bytes(data).hex()}")
            done.set()
        else:
            lines.append(describe(char.uuid, bytes(data), profile))

    async with BleakClient(device, backend=backends.client, timeout=20) as client:
        await client.pair()
        if service == GLUCOSE_SERVICE:
            for uuid in (MEASUREMENT, CONTEXT, RACP):
                await client.start_notify(uuid, on_data)
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
            await asyncio.wait_for(done.wait(), 30)
        else:
            await client.start_notify(BPM, on_data)
            while True:  # a cuff indicates its memory, then goes quiet
                quiet.clear()
                try:
                    await asyncio.wait_for(quiet.wait(), QUIET_S)
                except TimeoutError:
                    break
    return lines


async def read_all(backends: BleakBackends, scan_s: float = 3.0) -> dict[str, list[str]]:
    """Scan, then read every meter and cuff found; returns lines per device name."""
    wanted = [GLUCOSE_SERVICE, BP_SERVICE]
    if backends.scanner is None:  # bleak's platform backend
        found = await BleakScanner.discover(timeout=scan_s, return_adv=True, service_uuids=wanted)
    else:
        found = await BleakScanner.discover(
            timeout=scan_s, return_adv=True, service_uuids=wanted, backend=backends.scanner
        )
    out: dict[str, list[str]] = {}
    for device, adv in found.values():
        service = GLUCOSE_SERVICE if GLUCOSE_SERVICE in adv.service_uuids else BP_SERVICE
        out[device.name or device.address] = await read_device(device, service, backends)
    return out


async def _main(transport: str) -> None:
    backends = await backend_for(_Settings(transport))
    if backends.radio is not None:

        async def ask(address: str) -> int | None:
            text = await asyncio.to_thread(input, f"passkey shown by {address}: ")
            return int(text) if text.strip().isdigit() else None

        backends.radio.passkey_agent = ask
    try:
        for name, lines in (await read_all(backends)).items():
            print(f"== {name}")
            for line in lines:
                print(line)
    finally:
        await backends.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1] if len(sys.argv) > 1 else "tcp-client:127.0.0.1:7700"))
