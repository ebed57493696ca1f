"""The demo's broker: Mosquitto with the shipped access rules, as deployed but on loopback.

Two listeners, each with its own password file and the ACL file the deployment ships
(`deploy/mosquitto/acl-gateways`, `acl-services`, used verbatim): one for the hubs, whose
accounts the enrolment endpoint writes when a hub redeems its code, and one for the
services (ingest). A hub can then publish only under its own gateway id, as in production. TLS
is left out: both listeners are bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from careteam.broker import password_hash
from homevitals.demo_errors import DemoError
from homevitals.demo_procs import Service, broker_settings, child_env, find_mosquitto

SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
INGEST_USER = "ingest"


@dataclass
class Broker:
    """The broker process and what clients need to reach it."""

    service: Service
    gateway_port: int
    service_port: int
    ingest_password: str
    gateway_passwords: Path


def secured_broker(workdir: Path, gateway_port: int, service_port: int) -> Broker:
    """Configure Mosquitto in `workdir/broker/` (not started).

    Raises:
        DemoError: Mosquitto or the shipped ACL files are missing.
    """
    binary = find_mosquitto()
    conf_dir = workdir / "broker"
    data = conf_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("acl-gateways", "acl-services"):
        source = SHIPPED / name
        if not source.is_file():
            raise DemoError(f"the shipped broker ACL {source} is missing (run from a checkout)")
        shutil.copyfile(source, conf_dir / name)
    ingest_password = secrets.token_urlsafe(24)
    services = conf_dir / "passwd-services"
    services.write_text(f"{INGEST_USER}:{password_hash(ingest_password)}\n")
    gateways = conf_dir / "passwd-gateways"
    gateways.touch()
    for path in (services, gateways):
        os.chmod(path, 0o600)
    lines = [
        "per_listener_settings true",
        *broker_settings(data),
        f"listener {gateway_port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {gateways}",
        "use_username_as_clientid true",
        f"acl_file {conf_dir / 'acl-gateways'}",
        "max_qos 1",
        f"listener {service_port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {services}",
        "use_username_as_clientid true",
        f"acl_file {conf_dir / 'acl-services'}",
        "max_qos 1",
    ]
    if os.geteuid() == 0:
        lines.insert(0, "user root")  # keep the data directory ours; loopback-only demo broker
    conf = conf_dir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    service = Service("mosquitto", [binary, "-c", str(conf)], workdir, env=child_env({}))
    return Broker(service, gateway_port, service_port, ingest_password, gateways)
