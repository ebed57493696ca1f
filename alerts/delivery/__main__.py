"""`python -m alerts.delivery`: the delivery worker (composition root).

Reads `Settings` from the environment, configures logging, and delivers and escalates until
SIGTERM or SIGINT. Database migrations are a separate step (`homevitals webhook migrate`).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from alerts.delivery.settings import ConfigError, Settings, load_settings
from alerts.delivery.tables import DELIVERIES_CHANNEL
from alerts.delivery.worker import DeliveryWorker
from ingest.errors import StoreError
from ingest.notify import Poller, Waker, open_waker
from ingest.startup import wait_for_database
from ingest.store import make_engine

log = logging.getLogger("alerts.delivery")


def _failpoint(spec: str | None) -> Callable[[int], None] | None:
    if spec is None:
        return None
    limit = int(spec.split(":", 1)[1])
    seen = [0]

    def after_response(delivery_id: int) -> None:
        seen[0] += 1
        if seen[0] >= limit:
            log.warning("failpoint: SIGKILL after response to delivery %d", delivery_id)
            os.kill(os.getpid(), signal.SIGKILL)

    return after_response


def utc_now() -> datetime:
    """The wall clock, as an aware UTC datetime."""
    return datetime.now(UTC)


def run(settings: Settings) -> None:
    """Wait for the record store, then run the worker until SIGTERM/SIGINT.

    Raises:
        ingest.errors.StoreError: the record store refused for a reason waiting cannot fix.
    """
    stop = threading.Event()
    waker: Waker = Poller()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        waker.interrupt()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    url = settings.database_url.get_secret_value()
    if not wait_for_database(url, "delivery worker", stop=stop):
        return  # stopped before the record store came up
    # SQLite connections get WAL and synchronous=FULL (docs/architecture.md, record store).
    engine = make_engine(url)
    worker = DeliveryWorker(
        engine,
        settings.worker_config(),
        utc_now,
        random.Random(),  # noqa: S311 - retry jitter, not cryptography
        after_response=_failpoint(settings.failpoint),
    )
    for network in settings.allow_networks():
        log.warning("HV_DELIVERY_ALLOW_CIDRS allows receivers in the private network %s", network)
    # PostgreSQL: woken by the commit of new deliveries (LISTEN); SQLite: polls.
    waker = open_waker(engine, [DELIVERIES_CHANNEL])
    if stop.is_set():
        waker.interrupt()
    log.info("delivery worker started")
    try:
        worker.run(
            stop, settings.poll_interval_s, waker=waker, fallback_s=settings.notify_fallback_s
        )
    finally:
        waker.close()
        worker.close()
        engine.dispose()
        log.info("delivery worker stopped")


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request with its full URL at INFO; a webhook URL's path may carry the
    # receiver's token, so the worker logs endpoint ids and hosts only (its own lines).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    try:
        run(settings)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
