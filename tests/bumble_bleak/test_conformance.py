"""Fails loudly when bleak's backend contract or the pinned stack versions change.

The backend subclasses bleak's (semi-private) backend base classes and builds bleak's service
objects itself; the firmware drives Bumble's controller and link internals. Any drift in those
surfaces must be looked at by a person, not discovered in the field.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService
from bumble.controller import Controller
from bumble.link import LocalLink

from bumble_bleak.backend import VirtualBleakClient, VirtualBleakScanner

PINNED = {"bleak": "3.1.0", "bumble": "0.0.236"}

CLIENT_ABSTRACT = {
    "connect": "(self, pair, **kwargs)",
    "disconnect": "(self)",
    "is_connected": "(self)",
    "mtu_size": "(self)",
    "pair": "(self, *args, **kwargs)",
    "read_gatt_char": "(self, characteristic, *, use_cached=False, **kwargs)",
    "read_gatt_descriptor": "(self, descriptor, *, use_cached=False, **kwargs)",
    "start_notify": "(self, characteristic, callback, **kwargs)",
    "stop_notify": "(self, characteristic)",
    "unpair": "(self)",
    "write_gatt_char": "(self, characteristic, data, response)",
    "write_gatt_descriptor": "(self, descriptor, data)",
}
SCANNER_ABSTRACT = {"start": "(self)", "stop": "(self)"}
CONSTRUCTORS: dict[str, tuple[Callable[..., Any], str]] = {
    "BaseBleakClient.__init__": (
        BaseBleakClient.__init__,
        "(self, address_or_ble_device, *, disconnected_callback, timeout, **kwargs)",
    ),
    "BaseBleakScanner.__init__": (
        BaseBleakScanner.__init__,
        "(self, detection_callback, service_uuids)",
    ),
    "BaseBleakScanner.create_or_update_device": (
        BaseBleakScanner.create_or_update_device,
        "(self, key, address, name, details, adv)",
    ),
    "BleakGATTService.__init__": (BleakGATTService.__init__, "(self, obj, handle, uuid)"),
    "BleakGATTCharacteristic.__init__": (
        BleakGATTCharacteristic.__init__,
        "(self, obj, handle, uuid, properties, max_write_without_response_size, service)",
    ),
    "BleakGATTDescriptor.__init__": (
        BleakGATTDescriptor.__init__,
        "(self, obj, handle, uuid, characteristic)",
    ),
    "Controller.on_le_disconnected": (
        Controller.on_le_disconnected,
        "(self, connection, reason)",
    ),
    "LocalLink.send_acl_data": (
        LocalLink.send_acl_data,
        "(self, sender_controller, destination_address, transport, data)",
    ),
    "LocalLink.send_ll_control_pdu": (
        LocalLink.send_ll_control_pdu,
        "(self, sender_address, receiver_address, packet)",
    ),
}


def _shape(function: Callable[..., Any]) -> str:
    """A signature without annotations: names, kinds and defaults."""
    signature = inspect.signature(function)
    plain = signature.replace(
        parameters=[
            p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
        ],
        return_annotation=inspect.Signature.empty,
    )
    return str(plain)


def _abstract_shapes(cls: type) -> dict[str, str]:
    out = {}
    for name in cls.__abstractmethods__:
        member = inspect.getattr_static(cls, name)
        out[name] = _shape(member.fget if isinstance(member, property) else member)
    return out


def test_pinned_versions_are_installed() -> None:
    assert {name: version(name) for name in PINNED} == PINNED


def test_bleak_client_base_class_abstract_methods_are_unchanged() -> None:
    assert _abstract_shapes(BaseBleakClient) == CLIENT_ABSTRACT


def test_bleak_scanner_base_class_abstract_methods_are_unchanged() -> None:
    assert _abstract_shapes(BaseBleakScanner) == SCANNER_ABSTRACT


def test_constructors_and_internals_we_call_are_unchanged() -> None:
    assert {k: _shape(f) for k, (f, _) in CONSTRUCTORS.items()} == {
        k: shape for k, (_, shape) in CONSTRUCTORS.items()
    }


def test_advertisement_data_fields_are_unchanged() -> None:
    assert AdvertisementData._fields == (
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "tx_power",
        "rssi",
        "platform_data",
    )


def test_our_backends_implement_every_abstract_method() -> None:
    assert VirtualBleakClient.__abstractmethods__ == frozenset()
    assert VirtualBleakScanner.__abstractmethods__ == frozenset()
    for name in CLIENT_ABSTRACT:
        assert name in VirtualBleakClient.__dict__, name
    for name in SCANNER_ABSTRACT:
        assert name in VirtualBleakScanner.__dict__, name
