"""Logical ids (pure): record ids to FHIR ids and back.

FHIR ids are ``[A-Za-z0-9-.]``; record ids (patients, gateways) may also hold ``_`` and ``:``.
Ids made only of FHIR characters without a ``.`` are used as they are; otherwise ``.``, ``_``
and ``:`` are written as ``.2e``, ``.5f`` and ``.3a`` (so the mapping is reversible). Gateways
become Devices whose id is a UUIDv5 of the gateway id, which cannot collide with a device id
(UUIDv5s in another namespace).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

GATEWAY_NAMESPACE: Final = uuid.UUID("5d1c0b7e-3a4f-5e62-8b19-4c7d2e9f0a13")
FHIR_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ESCAPES: Final = {".": ".2e", "_": ".5f", ":": ".3a"}
_UNESCAPE: Final = re.compile(r"\.(2e|5f|3a)")
_RECORD_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def to_fhir_id(record_id: str) -> str:
    """The FHIR id of a record id (reversible with `from_fhir_id`)."""
    if not any(c in record_id for c in _ESCAPES):
        return record_id
    return "".join(_ESCAPES.get(c, c) for c in record_id)


def from_fhir_id(fhir_id: str) -> str | None:
    """The record id a FHIR id names, or None when it cannot name one."""
    if not FHIR_ID.fullmatch(fhir_id) and not re.fullmatch(r"^[A-Za-z0-9\-.]{65,200}$", fhir_id):
        return None
    record_id = _UNESCAPE.sub(lambda m: {"2e": ".", "5f": "_", "3a": ":"}[m.group(1)], fhir_id)
    if not _RECORD_ID.fullmatch(record_id) or to_fhir_id(record_id) != fhir_id:
        return None
    return record_id


def gateway_device_id(gateway_id: str) -> str:
    """The Device id of a gateway (home hub)."""
    return str(uuid.uuid5(GATEWAY_NAMESPACE, gateway_id))
