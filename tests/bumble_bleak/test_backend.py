"""Unmodified bleak code against firmware on the virtual air: every GATT procedure of the
backend, its errors, pairing and bonds, disconnects and the link-supervision timeout."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from firmware_sims.air import VirtualAir
from firmware_sims.peripheral import Security
from tests.firmware_sims.conftest import (
    ECHO_INDICATE,
    ECHO_NOTIFY,
    ECHO_SERVICE,
    ECHO_VALUE,
    SECRET,
    make_echo,
)

BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"


async def test_scanner_reports_name_services_and_filters_by_service(air: VirtualAir) -> None:
    echo = make_echo(air)
    other = make_echo(air, address="F0:00:00:00:00:02")
    other.advertised_services = ()
    await echo.power_on()
    await other.power_on()
    scanner_cls, _ = air.backends()

    found = await BleakScanner.discover(
        timeout=0.5, return_adv=True, service_uuids=[BATTERY_SERVICE], backend=scanner_cls
    )

    assert list(found) == ["F0:00:00:00:00:01"]
    device, adv = found["F0:00:00:00:00:01"]
    assert device.name == "Echo-01"
    assert adv.local_name == "Echo-01"
    assert adv.service_uuids == [BATTERY_SERVICE]


async def test_connect_exchanges_mtu_and_discovers_services(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    scanner_cls, client_cls = air.backends()
    device = await BleakScanner.find_device_by_name("Echo-01", timeout=5, backend=scanner_cls)
    assert device is not None

    async with BleakClient(device, backend=client_cls) as client:
        assert client.mtu_size == 517
        assert client.services.get_service(ECHO_SERVICE) is not None
        char = client.services.get_characteristic(ECHO_VALUE)
        assert char is not None
        assert sorted(char.properties) == ["read", "write", "write-without-response"]
        assert char.max_write_without_response_size == 514
        assert await client.read_gatt_char("2a29") == bytearray(b"Acme Medical")
        assert await client.read_gatt_char("2a25") == bytearray(b"SN01")
    assert not client.is_connected


async def test_writes_with_and_without_response_reach_the_firmware(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        await client.write_gatt_char(ECHO_VALUE, b"\x01\x02", response=True)
        await client.write_gatt_char(ECHO_VALUE, b"\x03", response=False)
        # a read after the command is ordered behind it on the one ATT bearer
        assert await client.read_gatt_char(ECHO_VALUE) == bytearray(b"\x03")
    assert echo.written == [b"\x01\x02", b"\x03"]


async def test_notifications_and_indications_arrive_until_stop_notify(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    notified: asyncio.Queue[tuple[str, bytearray]] = asyncio.Queue()

    def on_value(char: BleakGATTCharacteristic, data: bytearray) -> None:
        notified.put_nowait((char.uuid, data))

    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        await client.start_notify(ECHO_NOTIFY, on_value)
        await client.start_notify(ECHO_INDICATE, on_value)
        await echo.device.notify_subscribers(echo.notifying, b"N" * 100)
        await echo.device.indicate_subscribers(echo.indicating, b"I1")
        assert await notified.get() == (ECHO_NOTIFY, bytearray(b"N" * 100))
        assert await notified.get() == (ECHO_INDICATE, bytearray(b"I1"))
        await client.stop_notify(ECHO_NOTIFY)
        await echo.device.notify_subscribers(echo.notifying, b"late")
        await echo.device.indicate_subscribers(echo.indicating, b"I2")
        assert await notified.get() == (ECHO_INDICATE, bytearray(b"I2"))
    assert notified.empty()


async def test_att_errors_surface_as_bleak_gatt_protocol_errors(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError) as not_encrypted:
            await client.read_gatt_char(SECRET)
        assert not_encrypted.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
        with pytest.raises(BleakGATTProtocolError) as read_only:
            await client.write_gatt_char("2a29", b"x", response=True)
        assert read_only.value.code is BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED


async def test_device_side_disconnect_calls_the_disconnected_callback(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    gone = asyncio.Event()
    client = BleakClient(
        "F0:00:00:00:00:01", disconnected_callback=lambda _c: gone.set(), backend=client_cls
    )
    await client.connect()
    await echo.disconnect_all()
    await gone.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(ECHO_VALUE)


async def test_just_works_pairing_bonds_and_the_bond_survives_reconnects(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls, pair=True) as client:
        assert await client.read_gatt_char(SECRET) == bytearray(b"s3cret")
    assert await echo.bonded_hosts() == ["C0:11:22:33:44:55"]

    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        # no pair() this time: the stored bond encrypts the link on connect
        assert await client.read_gatt_char(SECRET) == bytearray(b"s3cret")
        await client.unpair()
        assert not client.is_connected

    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError):
            await client.read_gatt_char(SECRET)


async def test_passkey_entry_with_the_passkey_the_device_displays(air: VirtualAir) -> None:
    echo = make_echo(air, security=Security.PASSKEY, passkey=408_216)
    await echo.power_on()
    _, client_cls = air.backends()
    radio = await air.central()

    async def agent(address: str) -> int | None:
        assert address == "F0:00:00:00:00:01"
        await echo.passkey_shown.wait()  # the user reads the display
        return echo.displayed_passkey

    radio.passkey_agent = agent
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        await client.pair()
        assert await client.read_gatt_char(SECRET) == bytearray(b"s3cret")
    assert echo.displayed_passkey == 408_216


async def test_wrong_passkey_fails_pairing_and_leaves_no_bond(air: VirtualAir) -> None:
    echo = make_echo(air, security=Security.PASSKEY, passkey=408_216)
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        with pytest.raises(BleakError):
            await client.pair(passkey=111_111)
    assert await echo.bonded_hosts() == []
    assert await (await air.central()).bond_of("F0:00:00:00:00:01") is None


async def test_refused_pairing_is_a_bleak_error(air: VirtualAir) -> None:
    echo = make_echo(air)
    echo.refuse_pairing = True
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        with pytest.raises(BleakError):
            await client.pair()


async def test_power_off_disconnects_the_central_after_the_supervision_timeout(
    air: VirtualAir,
) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    gone = asyncio.Event()
    client = BleakClient(
        "F0:00:00:00:00:01", disconnected_callback=lambda _c: gone.set(), backend=client_cls
    )
    await client.connect()
    await echo.power_off()
    # the radio went silent, but the central cannot know yet: no supervision timeout so far
    assert client.is_connected
    async with asyncio.timeout(air.supervision_timeout_s * 10):
        await gone.wait()
    assert not client.is_connected

    # a request in flight when the device vanishes fails instead of hanging
    await echo.power_on()
    await client.connect()
    read = asyncio.ensure_future(client.read_gatt_char(ECHO_VALUE))
    await echo.power_off()
    with pytest.raises(BleakError):
        await read
    await client.disconnect()


async def test_out_of_range_and_back_within_the_timeout_keeps_the_link(air: VirtualAir) -> None:
    echo = make_echo(air)
    await echo.power_on()
    _, client_cls = air.backends()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        air.set_in_range("F0:00:00:00:00:01", False)
        air.set_in_range("F0:00:00:00:00:01", True)
        await asyncio.sleep(air.supervision_timeout_s * 2)  # let the supervision timer run out
        assert client.is_connected
        assert await client.read_gatt_char(ECHO_VALUE) == bytearray(b"hello")


async def test_connecting_to_an_absent_device_times_out_and_frees_the_initiator(
    air: VirtualAir,
) -> None:
    _, client_cls = air.backends()
    with pytest.raises(TimeoutError):
        await BleakClient("F0:00:00:00:00:09", backend=client_cls, timeout=0.3).connect()
    echo = make_echo(air)
    await echo.power_on()
    async with BleakClient("F0:00:00:00:00:01", backend=client_cls) as client:
        assert client.is_connected


async def test_failed_pairing_during_connect_leaves_no_link(air: VirtualAir) -> None:
    echo = make_echo(air)
    echo.refuse_pairing = True
    await echo.power_on()
    _, client_cls = air.backends()
    client = BleakClient("F0:00:00:00:00:01", backend=client_cls, pair=True)
    with pytest.raises(BleakError):
        await client.connect()
    assert not client.is_connected
    echo.refuse_pairing = False
    await client.connect()  # the same client object connects again
    await client.connect()  # a second connect on a live link is a no-op
    assert client.is_connected
    await client.disconnect()
