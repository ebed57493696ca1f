"""Wiring of one ingest process: record store, MQTT consumer and time-series mirror.

`run_service` is what `python -m ingest run` (and `homevitals ingest run`) execute in each
worker process. It owns every client it opens and closes them on the way out.
"""

from __future__ import annotations

import gc
import itertools
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from ingest.consumer import Consumer, sigkill_self, utc_now
from ingest.mirror import FileLineWriter, InfluxLineWriter, LineWriter, run_mirror
from ingest.samples import SampleSink
from ingest.settings import Settings
from ingest.startup import wait_for_database
from ingest.store import make_engine, migrate

log = logging.getLogger(__name__)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr, one line per record, process id first (several workers share stderr)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )


def _install_stop(stop: threading.Event) -> None:
    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def _with_failpoint(write: LineWriter, settings: Settings) -> LineWriter:
    """The writer, or (test-only) one that dies after the Nth accepted write, before the
    mirror's cursor commits: the points are on the server, the cursor says they are not."""
    if settings.failpoint != "mirror_after_write":
        return write
    writes = itertools.count(1)

    def write_then_die(lines: Sequence[str]) -> None:
        write(lines)
        if next(writes) == settings.failpoint_batch:
            sigkill_self("mirror_after_write")

    return write_then_die


def _mirror_writer(settings: Settings) -> InfluxLineWriter | FileLineWriter | None:
    """The time-series writer the settings name (a server, a local file), or None."""
    url = settings.tsdb_url
    if url is None:
        return None
    if url.startswith("file://"):
        return FileLineWriter.from_url(url)
    if settings.tsdb_token is None:
        return None
    return InfluxLineWriter(
        url, settings.tsdb_token.get_secret_value(), settings.tsdb_org, settings.tsdb_bucket
    )


# Allocations between two young-generation collections (CPython's default is 700). Validating a
# batch of 2,000 readings allocates about 100,000 short-lived objects without reference cycles;
# with the default every batch set off well over a hundred collections, each also walking the
# objects start-up left (SQLAlchemy, paho, pydantic), which is a tenth of the validation time.
GC_YOUNG_ALLOCATIONS = 50_000
# The GIL switch interval stays CPython's 5 ms: 0.5 ms gave a batched drain more (0.95 cores
# busy instead of 0.79 in short runs) but cost single-reading messages a quarter of their rate
# over a 50,000-message drain (8,762 against 11,073 per second, bench/RESULTS.md).


def tune_interpreter() -> None:
    """Tune CPython's collector for the consumer: move what start-up allocated out of its way
    (`gc.freeze`) and collect the young generation less often (garbage in reference cycles is
    still collected, later)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, older, oldest)


def run_service(settings: Settings, *, mirror: bool = True, consume: bool = True) -> None:
    """Run consumer and mirror until SIGTERM/SIGINT.

    Waits for the record store first (`ingest.startup`), however long it takes.

    Raises:
        ingest.errors.StoreError: the record store is unusable at start-up (bad URL, refused
            credentials, migration).
    """
    url = settings.db_url.get_secret_value()
    stop = threading.Event()
    _install_stop(stop)
    if not wait_for_database(url, "ingest", stop=stop):
        return  # stopped while the record store was still down
    if settings.migrate_on_start:
        migrate(url)
    engine = make_engine(url)
    mirror_thread: threading.Thread | None = None
    writer = _mirror_writer(settings) if mirror else None
    if writer is not None:
        mirror_thread = threading.Thread(
            target=run_mirror,
            args=(engine, _with_failpoint(writer, settings), stop),
            kwargs={
                "name": settings.mirror_name,
                "limit": settings.mirror_batch,
                "idle_s": settings.mirror_idle_ms / 1000,
                "clock": utc_now,
            },
            name="mirror",
            daemon=True,
        )
        mirror_thread.start()
    consumer: Consumer | None = None
    sample_thread: threading.Thread | None = None
    try:
        if consume:
            sink: SampleSink | None = None
            if writer is not None:  # raw samples go to the time series only, when there is one
                sink = SampleSink(engine, writer, utc_now)
            consumer = Consumer(settings, engine, samples=None if sink is None else sink.offer)
            if sink is not None:
                sink.publish = consumer.publish_receipt
                sample_thread = threading.Thread(
                    target=sink.run, args=(stop,), name="samples", daemon=True
                )
                sample_thread.start()
            consumer.start()
            tune_interpreter()
            consumer.run(stop)
        else:
            stop.wait()
    finally:
        stop.set()
        if consumer is not None:
            consumer.close()
        if mirror_thread is not None:
            mirror_thread.join(30)
        if sample_thread is not None:
            sample_thread.join(30)
        if writer is not None:
            writer.close()
        engine.dispose()
