"""The hub's enrolment: redeem a code at the server, keep the identity it gives (adapter).

A care team gives the patient a short code; typed on the pairing page, or given to
``homevitals gateway enrol CODE``, it is sent to the server's enrolment endpoint
(``enrolment_url``), which answers with the hub's identity: its gateway id (also its broker user
name), a broker password, and the patients it serves (id and short name: the page shows the
short name, never a free-text id). The identity is written to ``identity.json`` in the data
directory (mode 0600, written atomically); settings fill `gateway_id`, `mqtt_username` and
`mqtt_password` from it when they are not set explicitly. An enrolled hub sends its gateway id
with a further code, which the server accepts only if the code was made for this hub (it adds
the code's patients).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from gateway.errors import EnrolmentError

IDENTITY_FILE: Final = "identity.json"
TIMEOUT_S: Final = 15.0


@dataclass(frozen=True, slots=True)
class HubPatient:
    """A patient this hub serves, as the page shows them."""

    patient_id: str
    short_name: str


@dataclass(frozen=True, slots=True)
class Identity:
    """What enrolment gave the hub."""

    gateway_id: str
    mqtt_username: str
    mqtt_password: str | None
    patients: tuple[HubPatient, ...]


def identity_path(data_dir: Path) -> Path:
    """Where the identity is kept."""
    return data_dir / IDENTITY_FILE


def load_identity(data_dir: Path) -> Identity | None:
    """The stored identity, or None when the hub is not enrolled.

    Raises:
        EnrolmentError: the file exists but is not an identity (reason names the problem).
    """
    path = identity_path(data_dir)
    try:
        doc = json.loads(path.read_text())
        return Identity(
            gateway_id=str(doc["gateway_id"]),
            mqtt_username=str(doc["mqtt_username"]),
            mqtt_password=None if doc.get("mqtt_password") is None else str(doc["mqtt_password"]),
            patients=tuple(
                HubPatient(str(p["patient_id"]), str(p["short_name"])) for p in doc["patients"]
            ),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnrolmentError(f"{path} is not a hub identity: {exc}") from exc


def save_identity(data_dir: Path, identity: Identity) -> None:
    """Write the identity atomically, readable by the hub's user only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = identity_path(data_dir)
    tmp = path.with_name(path.name + ".tmp")
    doc = {
        "gateway_id": identity.gateway_id,
        "mqtt_username": identity.mqtt_username,
        "mqtt_password": identity.mqtt_password,
        "patients": [
            {"patient_id": p.patient_id, "short_name": p.short_name} for p in identity.patients
        ],
    }
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _merge(current: Identity | None, got: dict[str, object]) -> Identity:
    patients = tuple(
        HubPatient(str(p["patient_id"]), str(p["short_name"]))
        for p in got["patients"]  # type: ignore[attr-defined]
    )
    password = got.get("mqtt_password")
    if current is not None and current.gateway_id == got["gateway_id"]:
        return Identity(
            current.gateway_id,
            current.mqtt_username,
            current.mqtt_password if password is None else str(password),
            patients,
        )
    return Identity(
        str(got["gateway_id"]),
        str(got["mqtt_username"]),
        None if password is None else str(password),
        patients,
    )


def redeem(enrolment_url: str, code: str, data_dir: Path, *, verify: bool | str = True) -> Identity:
    """Send `code` to the server and store the identity it answers with.

    Raises:
        EnrolmentError: the code was refused (``reason`` ``invalid_code``), too many attempts
            (``rate_limited``), the server could not be reached or answered nonsense.
    """
    current = load_identity(data_dir)
    body: dict[str, str] = {"code": code.strip()}
    if current is not None:
        body["gateway_id"] = current.gateway_id
    url = enrolment_url.rstrip("/") + "/v1/enrol"
    try:
        with httpx.Client(timeout=TIMEOUT_S, verify=verify, follow_redirects=False) as http:
            answer = http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise EnrolmentError(f"the enrolment server could not be reached: {exc}") from exc
    if answer.status_code == 429:
        raise EnrolmentError("too many attempts; try again later", reason="rate_limited")
    if answer.status_code in (403, 422):
        raise EnrolmentError("the code was not accepted", reason="invalid_code")
    if answer.status_code != 200:
        raise EnrolmentError(f"the enrolment server answered HTTP {answer.status_code}")
    try:
        identity = _merge(current, answer.json())
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolmentError(f"the enrolment server's answer is not an identity: {exc}") from exc
    save_identity(data_dir, identity)
    return identity


class HubIdentity:
    """The page's view of the hub's enrolment: its patients, and redeeming a further code."""

    def __init__(self, data_dir: Path, enrolment_url: str | None) -> None:
        self.data_dir = data_dir
        self.enrolment_url = enrolment_url

    def current(self) -> Identity | None:
        """The stored identity (None: not enrolled).

        Raises:
            EnrolmentError: the identity file is damaged.
        """
        return load_identity(self.data_dir)

    def patients(self) -> tuple[HubPatient, ...]:
        """The patients the hub serves (none when not enrolled or the file is damaged)."""
        try:
            identity = load_identity(self.data_dir)
        except EnrolmentError:
            return ()
        return identity.patients if identity is not None else ()

    async def redeem(self, code: str) -> Identity:
        """Redeem `code` at the enrolment server (see `redeem`).

        Raises:
            EnrolmentError: no enrolment_url, or see `redeem`.
        """
        if self.enrolment_url is None:
            raise EnrolmentError("enrolment_url is not set on this hub")
        return await asyncio.to_thread(redeem, self.enrolment_url, code, self.data_dir)
