"""Commit notifications from the record store: wake a waiting process when rows it needs commit.

On PostgreSQL a trigger NOTIFYs a channel inside the writing transaction, so the notification is
delivered when (and only if) that transaction commits: `readings` announces on
`READINGS_CHANNEL` (ingest's migration `ingest_0002`), webhook deliveries on delivery's own
channel. `Listener` keeps one autocommit connection that LISTENs; `wait(timeout_s)` returns True
as soon as a notification arrives and False when the timeout passes, and the caller does its
work either way: a notification only makes the next pass start earlier, it never carries data,
so a lost one costs at most one timeout (the fallback poll). A lost LISTEN connection is
reopened on the next wait (and counts as a notification: something may have been missed).
SQLite has no notifications: `Poller.wait` only waits for the timeout.

`interrupt()` ends a wait at once (from a signal handler or another thread), so a process that
waits here still stops promptly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Sequence
from typing import Any, Final, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql

log = logging.getLogger(__name__)

READINGS_CHANNEL: Final = "hv_readings"


class Waker(Protocol):
    """Waits for the next commit notification or a timeout."""

    @property
    def listening(self) -> bool:
        """True while notifications can arrive (else every wait lasts its timeout)."""
        ...

    def wait(self, timeout_s: float) -> bool:
        """Block up to `timeout_s`; True when woken by a notification (or a reconnection)."""
        ...

    def interrupt(self) -> None:
        """End the current (or next) wait now."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


class Poller:
    """`Waker` without notifications (SQLite): every wait lasts its timeout (or an interrupt)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def listening(self) -> bool:
        """Never: see `Waker`."""
        return False

    def wait(self, timeout_s: float) -> bool:
        """See `Waker`; always False."""
        self._event.wait(max(0.0, timeout_s))
        self._event.clear()
        return False

    def interrupt(self) -> None:
        """See `Waker`."""
        self._event.set()

    def close(self) -> None:
        """Nothing to release."""


class Listener:
    """`Waker` over PostgreSQL LISTEN on `channels` (see module doc)."""

    def __init__(self, connect_kwargs: dict[str, Any], channels: Sequence[str]) -> None:
        self._kwargs = connect_kwargs
        self._channels = tuple(channels)
        self._conn: psycopg.Connection[Any] | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.notifications = 0
        self._listen()

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is open: see `Waker`."""
        return self._conn is not None

    def _listen(self) -> bool:
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = psycopg.connect(**self._kwargs, autocommit=True)
            for channel in self._channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except psycopg.Error as exc:
            log.warning("LISTEN %s failed, polling until it works: %s", self._channels, exc)
            if conn is not None:  # connected, but the LISTEN failed: not left to the GC
                with contextlib.suppress(psycopg.Error):
                    conn.close()
            return False
        self._conn = conn
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def wait(self, timeout_s: float) -> bool:
        """See `Waker`."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        if self._conn is None:
            self._sleep(min(timeout_s, 1.0))
            return self._listen()  # reopened: commits in between were not announced to us
        conn = self._conn
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([conn.fileno(), self._read_fd], [], [], remaining)
            except (OSError, ValueError, psycopg.Error):
                self._drop()
                return True
            if self._read_fd in ready:
                self._drain_pipe()
                return False
            if not ready:
                return False
            try:
                pgconn = conn.pgconn
                pgconn.consume_input()
                got = 0
                while pgconn.notifies() is not None:
                    got += 1
            except psycopg.Error:
                log.warning("LISTEN connection lost; reopening")
                self._drop()
                return True
            if got:
                self.notifications += got
                return True
            # Readable without a notification (a server message): keep waiting.

    def _sleep(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self._read_fd], [], [], max(0.0, timeout_s))
        if ready:
            self._drain_pipe()

    def _drain_pipe(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 512):
                pass

    def interrupt(self) -> None:
        """See `Waker` (async-signal-safe: one write to a pipe)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"x")

    def close(self) -> None:
        """Close the LISTEN connection and the interrupt pipe."""
        self._drop()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_waker(engine: sa.Engine, channels: Sequence[str]) -> Waker:
    """A `Listener` on `channels` for a PostgreSQL (psycopg) engine, else a `Poller`."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return Poller()
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    if args:
        kwargs = {"conninfo": args[0], **kwargs}
    return Listener(dict(kwargs), channels)
