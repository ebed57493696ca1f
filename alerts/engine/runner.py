"""The continuous runner: one evaluation per step, in one transaction with its results.

A step locks the engine (one writer), reads the cursor, takes the readings committed after it
into the in-memory window, evaluates every rule for every patient in the window (vectorized),
plans the episode changes against the open episodes and writes alerts, history, events, the
sink's outbox rows and the new cursor in the same transaction. Killed at any point, the next
step (in this or a new process) sees the old cursor and re-derives the same changes.

Most steps evaluate only the patients with new readings (all rules but adherence, vectorized
over those patients); every `full_every_s` a step evaluates every patient, which also lets
time-driven changes through (readings ageing out of a window, `adherence.no_readings`).
`adherence.no_readings` is only evaluated when the step has caught up with the store (fewer
new readings than the batch limit): a pipeline that is behind must not look like a patient who
stopped measuring; nor does a hub that is offline or whose storage is full (an open
`technical.hub_offline` or `technical.hub_storage_full` finding of the freshness checker makes
the patient's adherence "insufficient data").

Patients' time zones and conditions come through `patients_for(conn)` (a `PatientDirectory`;
`run_forever` reads the patient record with the care plan's values as explicit overrides).
Every revision is stored; events are pushed per the alert-fatigue policy
(`alerts.engine.episodes`, `update_interval_s`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from alerts.engine import store
from alerts.engine.episodes import (
    DEFAULT_UPDATE_INTERVAL_S,
    OpenEpisode,
    candidate_alert_ids,
    plan_changes,
    prior_state,
)
from alerts.engine.errors import StoreError
from alerts.engine.evaluate import evaluate_all, horizon_s
from alerts.engine.leases import Held, LeaseKeeper, Scope, WholeStore
from alerts.engine.partitions import PARTITIONS, partition_of, partitions_of
from alerts.engine.patients import NO_PATIENTS, Layered, PatientDirectory
from alerts.engine.record_patients import RecordPatients
from alerts.engine.scoped import evaluate_scoped
from alerts.engine.source import ReadingSource
from alerts.engine.store_source import StoreSource
from alerts.engine.tiered import TieredWindow
from alerts.engine.window import merge
from alerts.events import AlertEvent
from alerts.freshness.core import HUB_SILENCES
from alerts.rules.catalog import RULES, Overrides
from alerts.rules.columns import ReadingColumns
from careteam import migrations as record_migrations
from ingest.notify import READINGS_CHANNEL, Poller, open_waker

log = logging.getLogger(__name__)

ADHERENCE_RULE = "adherence.no_readings"


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did."""

    new_readings: int
    cursor: int
    events: tuple[AlertEvent, ...]
    caught_up: bool


@dataclass
class Runner:
    """Evaluates the rules over the record store, step by step (see module doc)."""

    engine: sa.Engine
    sink: store.EventSink | None = None
    overrides: Overrides = field(default_factory=dict)
    lookback_d: float = 35.0
    batch_limit: int = 50_000
    name: str = store.DEFAULT_ENGINE
    failpoint: store.Failpoint | None = None
    source_for: Callable[[sa.Connection], ReadingSource] = StoreSource
    full_every_s: float = 900.0
    # Which patients this runner evaluates and where its cursor lives: the whole store by
    # default; a `leases.LeaseKeeper` for one of several scale-out workers.
    scope: Scope | None = None
    patients_for: Callable[[sa.Connection], PatientDirectory] = lambda _conn: NO_PATIENTS
    update_interval_s: int = DEFAULT_UPDATE_INTERVAL_S
    _window: TieredWindow | None = None
    _window_cursor: int = 0
    _last_full_s: int | None = None
    _epochs: Mapping[int | None, int] | None = None
    _pending: set[str] = field(default_factory=set)  # patients to evaluate at the next step

    def step(self, now: datetime) -> StepResult:
        """Evaluate once at `now` (aware UTC) and commit the outcome.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the store failed; nothing of the step is kept
                (the in-memory window is reloaded on the next step).
            StoreError: the whole-store runner found scale-out workers holding leases.
        """
        now_s = int(now.timestamp())
        start = now - timedelta(days=self.lookback_d)
        scope = self.scope or WholeStore(self.name)
        try:
            with self.engine.begin() as conn:
                held = scope.enter(conn)
                source = self.source_for(conn)
                cursor = held.cursor
                start_s = int(start.timestamp())
                if self._window is None:  # first step, or after a failed one: a full step
                    loaded = _between(source, held.partitions, start, LOAD_UNTIL)
                    self._window = TieredWindow(loaded)
                    self._window_cursor = _max_cursor(loaded, cursor)
                    self._last_full_s = None
                elif held.epochs != self._epochs:
                    self._repartition(self._window, source, held, start, now)
                self._epochs = held.epochs
                if held.partitions is not None and isinstance(source, StoreSource):
                    source = source.restricted(held.partitions)
                read = source.readings_after(max(cursor, self._window_cursor), self.batch_limit)
                caught_up = len(read) < self.batch_limit
                new = _restrict(read, held)
                full = self._last_full_s is None or now_s - self._last_full_s >= self.full_every_s
                idle = not len(read) and not self._pending and self._window_cursor <= cursor
                if idle and not full:
                    # Nothing new and no full step due: nothing can change (an idle engine
                    # costs one indexed query per wake-up, not a pass over its window).
                    return StepResult(0, cursor, (), caught_up)
                window = self._window
                window.add(new, start_s=start_s)
                new_cursor = max(_max_cursor(read, cursor), self._window_cursor)
                if full or window.needs_compaction():
                    window.compact(start_s=start_s)
                hub_offline: set[str] = set()
                if full:
                    rules = [r for r in RULES if caught_up or r.rule_id != ADHERENCE_RULE]
                    episodes = _own_episodes(store.open_episodes(conn), held)
                    hub_offline = {e.patient_id for e in episodes if e.rule_id in HUB_SILENCES}
                    sub = window.base
                else:
                    # Only the patients with new readings, and only the rows their rules can
                    # see: the cost of a step is what is new, not the window.
                    rules = [r for r in RULES if r.rule_id != ADHERENCE_RULE]
                    fresh_new = new.patient[new.cursor > _thresholds(new, held)]
                    pids = sorted(
                        {new.patient_ids[int(c)] for c in np.unique(fresh_new)} | self._pending
                    )
                    since_s = now_s - horizon_s(rules, self.overrides)
                    sub = window.patients(pids, since_s=since_s, until_s=now_s)
                    episodes = store.open_episodes(conn, pids) if pids else []
                window_now = sub.take(sub.measured_at_s <= now_s)
                fresh = window_now.cursor > _thresholds(window_now, held)
                prior = prior_state(window_now, episodes)
                profiles = self.patients_for(conn).profiles(window_now.patient_ids)
                # A full step evaluates every row; a step for the patients with new readings
                # runs each rule over the rows it reads (its kinds, its horizon): same results.
                evaluate = evaluate_all if full else evaluate_scoped
                results = evaluate(
                    window_now, now_s, prior=prior, overrides=self.overrides, rules=rules,
                    profiles=profiles, new_rows=fresh, hub_offline=hub_offline,
                )  # fmt: skip
                known = store.existing_alert_ids(conn, candidate_alert_ids(results, window_now))
                changes = plan_changes(
                    results, window_now, episodes, new_rows=fresh, known_alert_ids=known,
                    now_s=now_s, update_interval_s=self.update_interval_s, profiles=profiles,
                )  # fmt: skip
                events = store.apply_changes(
                    conn, changes, now=now, cursor=new_cursor, sink=self.sink,
                    failpoint=self.failpoint, name=self.name,
                    commit_cursor=lambda c: scope.commit(c, held, new_cursor, now),
                )  # fmt: skip
        except BaseException:
            self._window = None
            raise
        self._pending = set()
        self._window_cursor = new_cursor
        if full:
            self._last_full_s = now_s
        if events:
            log.info("%s: %d readings, %d alert events", self.name, len(new), len(events))
        return StepResult(len(new), new_cursor, tuple(events), caught_up)

    def _repartition(
        self, window: TieredWindow, source: ReadingSource, held: Held, start: datetime,
        now: datetime,
    ) -> None:  # fmt: skip
        """After partitions were gained or lost (a scale-out worker): drop the rows of the
        lost ones, load those of the gained ones up to the window's cursor (the rest come with
        the next new readings; each partition's own cursor says which rows its previous owner
        evaluated), and evaluate the gained patients at the next step. A partition re-claimed
        after another worker held it (its epoch moved) counts as lost and gained."""
        before = self._epochs or {}
        parts = held.partitions or frozenset()
        kept = frozenset(k for k in parts if before.get(k) == held.epochs.get(k))
        start_s = int(start.timestamp())
        base = _restrict(window.compact(start_s=start_s), kept)
        gained = parts - kept
        if gained:
            loaded = _between(source, gained, start, LOAD_UNTIL)
            loaded = loaded.take(loaded.cursor <= self._window_cursor)
            base = merge(base, loaded, start_s=start_s)
            self._pending |= {loaded.patient_ids[int(c)] for c in np.unique(loaded.patient)}
        window.reset(base)
        log.info("%s: now %d partitions (%d kept, %d new)", self.name, len(parts), len(kept),
                 len(gained))  # fmt: skip


def _between(
    source: ReadingSource, partitions: frozenset[int] | None, start: datetime, end: datetime
) -> ReadingColumns:
    """`source.readings_between` for the patients of `partitions` (None: every patient)."""
    if partitions is None:
        return source.readings_between(start, end)
    if isinstance(source, StoreSource):
        source = source.restricted(partitions)
    return _restrict(source.readings_between(start, end), partitions)


def _restrict(cols: ReadingColumns, partitions: frozenset[int] | Held | None) -> ReadingColumns:
    """The rows of the patients in `partitions` (all rows for None, the whole store)."""
    if isinstance(partitions, Held):
        partitions = partitions.partitions
    if partitions is None or not len(cols):
        return cols
    mine = np.isin(partitions_of(cols.patient_ids), sorted(partitions))
    return cols.take(mine[cols.patient])


def _thresholds(cols: ReadingColumns, held: Held) -> int | npt.NDArray[np.int64]:
    """Per row, the cursor its partition was evaluated up to (one number when all agree)."""
    values = set(held.cursors.values())
    if len(values) <= 1 or held.partitions is None:
        return held.cursor
    by_partition = np.zeros(PARTITIONS, dtype=np.int64)
    for partition, last in held.cursors.items():
        if partition is not None:
            by_partition[partition] = last
    per_patient = by_partition[partitions_of(cols.patient_ids)]
    return per_patient[cols.patient]


def _own_episodes(episodes: list[OpenEpisode], held: Held) -> list[OpenEpisode]:
    if held.partitions is None:
        return episodes
    parts = held.partitions
    return [e for e in episodes if partition_of(e.patient_id) in parts]


# A loaded window holds every reading measured since the look-back's start, also those measured
# after the step's `now` (a device clock running ahead; the demo's review stepping through past
# days): the window's cursor becomes the highest id loaded, so a reading left out by its
# measurement time but committed before one that was loaded would never be read again. Each
# step evaluates only what is measured by its `now`.
LOAD_UNTIL: Final = datetime(9999, 12, 31, tzinfo=UTC)


def _max_cursor(cols: ReadingColumns, floor: int) -> int:
    return max(int(np.max(cols.cursor)), floor) if len(cols) else floor


def run_forever(
    url: str,
    *,
    interval_s: float,
    once: bool = False,
    overrides: Overrides | None = None,
    sink: store.EventSink | None = None,
    scale_out: bool = False,
    lease_s: float = 10.0,
    patients: PatientDirectory = NO_PATIENTS,
    update_interval_s: int = DEFAULT_UPDATE_INTERVAL_S,
) -> None:
    """Migrate the engine's tables (and the patient record it reads), then step whenever
    readings commit, and at least every `interval_s` (immediately again while the store has
    more than a batch of new readings).

    Time zones and conditions come from the patient record, with `patients` (the care plan)
    overriding it where it says something.

    On PostgreSQL the engine LISTENs on ingest's readings channel (`ingest.notify`): a
    committed batch wakes it at once, and `interval_s` is only the fallback poll (and the
    cadence of time-driven checks). On SQLite it polls every `interval_s`. A failed step
    (database outage) is logged once and retried from the same cursor.

    With `scale_out` (PostgreSQL) this process is one of several workers that share the
    patients through leases (`alerts.engine.leases`, lease period `lease_s`); it gives its
    partitions up when it stops cleanly (Ctrl-C, SIGTERM), and they are taken over when its
    leases expire when it does not.

    Raises:
        StoreError: the store cannot be reached or migrated (or, with `once`, the step failed).
    """
    store.migrate(url)
    try:
        record_migrations.migrate(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"patient record migration failed: {exc}") from exc
    engine = store.make_engine(url)
    keeper = None
    if scale_out:
        if engine.dialect.name != "postgresql":
            raise StoreError("--scale-out needs PostgreSQL (SQLite has a single writer)")
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        keeper = LeaseKeeper(worker_id, lease_s)
    runner = Runner(
        engine, sink=sink, overrides=overrides or {}, scope=keeper,
        patients_for=lambda conn: Layered(RecordPatients(conn), patients),
        update_interval_s=update_interval_s,
    )  # fmt: skip
    # LISTEN before the first step: a batch committed after a step read the store and before
    # its wait began is still announced to this connection.
    waker = open_waker(engine, [READINGS_CHANNEL]) if not once else Poller()
    failing = False
    next_maintain = 0.0
    try:
        while True:
            try:
                if keeper is not None and time.monotonic() >= next_maintain:
                    with engine.begin() as conn:
                        keeper.maintain(conn)
                    next_maintain = time.monotonic() + keeper.maintain_every_s
                result = runner.step(datetime.now(UTC))
            except SQLAlchemyError as exc:
                if once:
                    raise StoreError(f"evaluation not committed: {exc}") from exc
                if not failing:  # log once per outage; the step is retried from the same cursor
                    log.error("%s: evaluation not committed, retrying: %s", runner.name, exc)
                failing = True
                time.sleep(interval_s if keeper is None else keeper.maintain_every_s)
                continue
            if failing:
                log.info("%s: evaluations committed again", runner.name)
                failing = False
            if once:
                return
            if result.caught_up:
                timeout = interval_s
                if keeper is not None:
                    timeout = min(timeout, max(0.0, next_maintain - time.monotonic()))
                waker.wait(timeout)
    finally:
        waker.close()
        if keeper is not None:
            _release(engine, keeper)
        engine.dispose()


def _release(engine: sa.Engine, keeper: LeaseKeeper) -> None:
    try:
        with engine.begin() as conn:
            keeper.release_all(conn)
    except SQLAlchemyError as exc:  # the leases lapse by themselves
        log.warning("%s: leases not released: %s", keeper.name, exc)
