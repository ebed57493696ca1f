"""Bonds that survive a restart: Bumble's JSON key store, written privately and durably.

A Bumble central keeps the keys of every bonded device (LTK, IRK, CSRK) in its key store; the
default is memory, so a restarted hub would have forgotten every bond and each patient would
have to pair again (and re-enter a passkey). `DurableKeyStore` keeps them in a file in the
hub's data directory: mode 0600 (they are secrets), written to a temporary file, fsynced and
renamed, the directory fsynced, so a crash or power cut leaves the old bonds or the new ones,
never a torn file.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from bumble.keys import JsonKeyStore


class DurableKeyStore(JsonKeyStore):
    """`bumble.keys.JsonKeyStore` with private, crash-safe writes (see the module doc)."""

    def __init__(self, path: Path, namespace: str) -> None:
        super().__init__(namespace=namespace, filename=str(path))

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Replace the file with `db` atomically and durably, readable by its owner only.

        Raises:
            OSError: the file or its directory could not be written.
        """
        await asyncio.to_thread(self._write, db)

    def _write(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        directory = Path(self.directory_name)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = Path(self.filename)
        temp = target.with_name(target.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(db, out, sort_keys=True, indent=4)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
