"""Hub broker accounts in Mosquitto's password file (adapter; Debian's Mosquitto 2.0).

Enrolment installs ``<gateway id>:<hash>`` in the broker's ``password_file`` and tells the broker
to reload (SIGHUP); the shipped ACL's ``%u`` patterns then confine the hub to its own topic tree.
Revocation removes the line and reloads, and Mosquitto 2.0 disconnects a connected client whose
account is gone at the reload (checked on Debian's 2.0.11 by the tests). The hash is Mosquitto's
own ``$7$`` format (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt: what ``mosquitto_passwd``
writes), so the password never reaches disk in clear. Writers serialise on a lock file next to
the password file and replace it atomically (write, fsync, rename).

Set-up: point `password_file` of the gateway listener at the file, run the server side where it
can write that file, and give it the broker's pid file (``HV_CARETEAM_BROKER_PID_FILE``) or run
it in the broker's container. Deployments with client certificates instead (the 8883 listener)
revoke by certificate and need no password file.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Final

from careteam.errors import BrokerCredentialsError, InvalidFieldError

ITERATIONS: Final = 101
SALT_BYTES: Final = 12
# A broker user name: no '/', '+', '#' (they would reach into other topic trees under %u
# patterns), no ':' (the file's separator), no white space.
USERNAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2.0's ``$7$`` PBKDF2-SHA512 hash of `password`."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_username(username: str) -> str:
    """Validate a broker user name.

    Raises:
        InvalidFieldError: field ``"username"``.
    """
    if not USERNAME.fullmatch(username):
        raise InvalidFieldError(
            "username", "must be 1 to 64 letters, digits, '.', '_' or '-' (no '/', '+', '#')"
        )
    return username


def sighup_pid_file(pid_file: Path) -> Callable[[], None]:
    """A reload that sends SIGHUP to the process whose id is in `pid_file`."""

    def _reload() -> None:
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise BrokerCredentialsError(f"cannot signal the broker ({pid_file}): {exc}") from exc

    return _reload


def sighup_pid(pid: int) -> Callable[[], None]:
    """A reload that sends SIGHUP to process `pid`."""

    def _reload() -> None:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            raise BrokerCredentialsError(f"cannot signal the broker (pid {pid}): {exc}") from exc

    return _reload


class MosquittoPasswordFile:
    """`careteam.enrolment_store.BrokerAccounts` on a Mosquitto password file."""

    def __init__(self, path: Path, reload: Callable[[], None]) -> None:
        self._path = path
        self._reload = reload

    def usernames(self) -> list[str]:
        """The accounts in the file (for operators and tests)."""
        return [line.split(":", 1)[0] for line in self._lines()]

    def _lines(self) -> list[str]:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def _rewrite(self, change: Callable[[list[str]], list[str]]) -> None:
        lock = self._path.with_name(self._path.name + ".lock")
        try:
            with lock.open("a") as held:
                fcntl.flock(held, fcntl.LOCK_EX)
                lines = change(self._lines())
                tmp = self._path.with_name(self._path.name + ".tmp")
                with tmp.open("w") as out:
                    out.write("".join(f"{line}\n" for line in lines))
                    out.flush()
                    os.fsync(out.fileno())
                if self._path.exists():
                    before = self._path.stat()
                    os.chmod(tmp, before.st_mode & 0o777)
                    if os.geteuid() == 0:
                        # Keep the broker's ownership: Mosquitto re-reads the file at SIGHUP
                        # after dropping root, and a root-owned 0640 file is unreadable then.
                        os.chown(tmp, before.st_uid, before.st_gid)
                else:
                    os.chmod(tmp, 0o640)
                os.replace(tmp, self._path)
        except OSError as exc:
            raise BrokerCredentialsError(f"cannot write {self._path}: {exc}") from exc
        self._reload()

    def add(self, username: str, password: str) -> None:
        """Install (or replace) the account and reload the broker.

        Raises:
            InvalidFieldError: a user name Mosquitto's ACL could not confine.
            BrokerCredentialsError: the file could not be written or the broker signalled.
        """
        check_username(username)
        entry = f"{username}:{password_hash(password)}"
        self._rewrite(
            lambda lines: [*(x for x in lines if not x.startswith(username + ":")), entry]
        )

    def remove(self, username: str) -> None:
        """Remove the account and reload the broker (which disconnects the client).

        Raises:
            BrokerCredentialsError: the file could not be written or the broker signalled.
        """
        self._rewrite(lambda lines: [x for x in lines if not x.startswith(username + ":")])
