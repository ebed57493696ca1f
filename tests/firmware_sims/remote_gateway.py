"""A gateway-like bleak script for the second-process test: joins a virtual air over HCI/TCP.

    python -m tests.firmware_sims.remote_gateway tcp-client:127.0.0.1:PORT ADDRESS

Prints one JSON line: the device name it scanned, and every notification (hex) of a full RACP
transfer, then the RACP response.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic

from bumble_bleak.backend import backend_for

RACP = "00002a52-0000-1000-8000-00805f9b34fb"
NOTIFIED = ("00002a18-0000-1000-8000-00805f9b34fb", "00002a34-0000-1000-8000-00805f9b34fb")


@dataclass(frozen=True)
class Settings:
    ble_transport: str


async def main(transport: str, address: str) -> dict[str, object]:
    backends = await backend_for(Settings(transport))
    try:
        device = await BleakScanner.find_device_by_address(
            address, timeout=10, backend=backends.scanner
        )
        assert device is not None, "not found"
        records: list[str] = []
        response: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def on_data(char: BleakGATTCharacteristic, data: bytearray) -> None:
            if char.uuid == RACP:
                response.set_result(bytes(data))
            else:
                records.append(bytes(data).hex())

        async with BleakClient(device, backend=backends.client, pair=True) as client:
            for uuid in (*NOTIFIED, RACP):
                await client.start_notify(uuid, on_data)
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
            final = await asyncio.wait_for(response, 10)
        return {"name": device.name, "records": records, "response": final.hex()}
    finally:
        await backends.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
