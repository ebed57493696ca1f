"""The shipped broker (deploy/mosquitto) on a real Mosquitto, as docker-compose mounts it.

How the shipped files are run, verbatim but for ports and paths:
- `mosquitto.conf`: each ``listener PORT`` line becomes ``listener TEST_PORT 127.0.0.1`` (a free
  loopback port per shipped port), and the path prefixes ``/mosquitto/config/``,
  ``/mosquitto/certs/`` and ``/mosquitto/data/`` point into the test's directory. Nothing else
  changes; `render` checks that every other line is byte for byte the shipped one.
- The ACL files are copied unchanged; the password files and certificates are made by the
  documented init step, `deploy/init.sh broker` (and `gateway-cert` / `gateway-password`).
- `MOUNTS` is what docker-compose.yml mounts, host path -> container path; the compose test
  checks the compose file against it, so the mounted files are the tested ones.

Run as root, Mosquitto drops to the `mosquitto` user after reading its files, as in the image;
the init step's ``--owner`` gives it the files (the image's uid is 1883, Debian's differs).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.support.servers import ManagedProcess, free_port, which

ROOT: Final = Path(__file__).parents[2]
DEPLOY: Final = ROOT / "deploy" / "mosquitto"
INIT: Final = ROOT / "deploy" / "init.sh"
SHIPPED_PORTS: Final = (8883, 8884, 1883)
PATHS: Final = ("/mosquitto/config/", "/mosquitto/certs/", "/mosquitto/data/")
ACL_FILES: Final = ("acl-gateways", "acl-services")
MOUNTS: Final = {
    "./deploy/mosquitto/mosquitto.conf": "/mosquitto/config/mosquitto.conf",
    "./deploy/mosquitto/acl-gateways": "/mosquitto/config/acl-gateways",
    "./deploy/mosquitto/acl-services": "/mosquitto/config/acl-services",
    "./deploy/mosquitto/passwd-gateways": "/mosquitto/config/passwd-gateways",
    "./deploy/mosquitto/passwd-services": "/mosquitto/config/passwd-services",
    "./deploy/mosquitto/certs": "/mosquitto/certs",
}
SERVER_NAME: Final = "localhost"  # the server certificate names it; 127.0.0.1 is a mismatch


def render(text: str, ports: dict[int, int], base: Path) -> str:
    """The shipped config with test ports and paths; raises if anything else would differ."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["listener"]:
            assert len(words) == 2, f"shipped listener {line!r} must not bind an address"
            new = f"listener {ports[int(words[1])]} 127.0.0.1"
        else:
            new = line
            for prefix in PATHS:
                new = new.replace(prefix, f"{base}/{prefix.split('/')[2]}/")
        out.append(new)
    return "\n".join(out) + "\n"


def init_step(*args: str, env_file: Path, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run deploy/init.sh as an operator would."""
    owner = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("mosquitto")
        owner = ["--owner", f"{user.pw_uid}:{user.pw_gid}"]
    return subprocess.run(
        ["bash", str(INIT), "--env", str(env_file), "--dir", str(directory), *owner, *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"},
    )


@dataclass
class ShippedBroker:
    """deploy/mosquitto on free loopback ports, files made by deploy/init.sh."""

    workdir: Path
    ingest_password: str = "ingest-pw-for-tests-0123456789"
    ops_password: str = "ops-pw-for-tests-0123456789"
    ports: dict[int, int] = field(default_factory=lambda: {p: free_port() for p in SHIPPED_PORTS})
    process: ManagedProcess | None = None

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def ca(self) -> Path:
        return self.config_dir / "certs" / "ca.crt"

    @property
    def env_file(self) -> Path:
        return self.workdir / ".env"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def prepare(self) -> None:
        self.config_dir.mkdir(parents=True)
        data = self.workdir / "data"
        data.mkdir()
        self.env_file.write_text(
            f"HV_INGEST_MQTT_PASSWORD={self.ingest_password}\n"
            f"HV_OPS_MQTT_PASSWORD={self.ops_password}\n"
            f"HV_BROKER_HOSTNAME={SERVER_NAME}\n"
        )
        for name in ACL_FILES:
            shutil.copyfile(DEPLOY / name, self.config_dir / name)
        done = self.init("broker")
        assert done.returncode == 0, done.stderr
        # The mounted config dir layout: certs/ sits beside the config files, as in compose.
        (self.workdir / "certs").symlink_to(self.config_dir / "certs")
        if os.geteuid() == 0:
            user = pwd.getpwnam("mosquitto")
            os.chown(data, user.pw_uid, user.pw_gid)
            for acl in ACL_FILES:
                os.chown(self.config_dir / acl, user.pw_uid, user.pw_gid)
        rendered = render((DEPLOY / "mosquitto.conf").read_text(), self.ports, self.workdir)
        self.conf_path.write_text(rendered)
        self.process = ManagedProcess(
            "mosquitto-shipped",
            [which("mosquitto"), "-c", str(self.conf_path)],
            self.ports[1883],
            self.workdir,
        )

    def init(self, *args: str) -> subprocess.CompletedProcess[str]:
        return init_step(*args, env_file=self.env_file, directory=self.config_dir)

    def start(self) -> None:
        if self.process is None:
            self.prepare()
        assert self.process is not None
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password and ACL files (new gateways)."""
        assert self.process is not None and self.process.proc is not None
        self.process.proc.send_signal(1)
