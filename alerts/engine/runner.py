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
stopped measuring.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from alerts.engine import store
from alerts.engine.episodes import candidate_alert_ids, plan_changes, prior_state
from alerts.engine.errors import StoreError
from alerts.engine.evaluate import evaluate_all
from alerts.engine.source import ReadingSource
from alerts.engine.store_source import StoreSource
from alerts.engine.window import merge
from alerts.events import AlertEvent
from alerts.rules.catalog import RULES, Overrides
from alerts.rules.columns import ReadingColumns
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
    _window: ReadingColumns | None = None
    _window_cursor: int = 0
    _last_full_s: int | None = None

    def step(self, now: datetime) -> StepResult:
        """Evaluate once at `now` (aware UTC) and commit the outcome.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the store failed; nothing of the step is kept
                (the in-memory window is reloaded on the next step).
        """
        now_s = int(now.timestamp())
        start = now - timedelta(days=self.lookback_d)
        try:
            with self.engine.begin() as conn:
                store.lock_engine(conn)
                source = self.source_for(conn)
                cursor = store.read_cursor(conn, self.name)
                if self._window is None:
                    self._window = source.readings_between(start, now)
                    self._window_cursor = _max_cursor(self._window, cursor)
                new = source.readings_after(max(cursor, self._window_cursor), self.batch_limit)
                caught_up = len(new) < self.batch_limit
                full = self._last_full_s is None or now_s - self._last_full_s >= self.full_every_s
                if not len(new) and not full and self._window_cursor <= cursor:
                    # Nothing new and no full step due: nothing can change (an idle engine
                    # costs one indexed query per wake-up, not a pass over its window).
                    return StepResult(0, cursor, (), caught_up)
                window = merge(self._window, new, start_s=int(start.timestamp()))
                new_cursor = max(_max_cursor(new, cursor), self._window_cursor)
                window_now = window.take(window.measured_at_s <= now_s)
                if full:
                    rules = [r for r in RULES if caught_up or r.rule_id != ADHERENCE_RULE]
                    episodes = store.open_episodes(conn)
                else:
                    rules = [r for r in RULES if r.rule_id != ADHERENCE_RULE]
                    hot = np.unique(window_now.patient[window_now.cursor > cursor])
                    window_now = window_now.take(np.isin(window_now.patient, hot, kind="table"))
                    pids = [window_now.patient_ids[int(c)] for c in hot]
                    episodes = store.open_episodes(conn, pids) if pids else []
                prior = prior_state(window_now, episodes)
                results = evaluate_all(
                    window_now, now_s, prior=prior, overrides=self.overrides, rules=rules
                )
                known = store.existing_alert_ids(conn, candidate_alert_ids(results, window_now))
                changes = plan_changes(
                    results, window_now, episodes, new_rows=window_now.cursor > cursor,
                    known_alert_ids=known,
                )  # fmt: skip
                events = store.apply_changes(
                    conn, changes, now=now, cursor=new_cursor, sink=self.sink,
                    failpoint=self.failpoint, name=self.name,
                )  # fmt: skip
        except BaseException:
            self._window = None
            raise
        self._window = window
        self._window_cursor = new_cursor
        if full:
            self._last_full_s = now_s
        if events:
            log.info("%s: %d readings, %d alert events", self.name, len(new), len(events))
        return StepResult(len(new), new_cursor, tuple(events), caught_up)


def _max_cursor(cols: ReadingColumns, floor: int) -> int:
    return max(int(np.max(cols.cursor)), floor) if len(cols) else floor


def run_forever(
    url: str,
    *,
    interval_s: float,
    once: bool = False,
    overrides: Overrides | None = None,
    sink: store.EventSink | None = None,
) -> None:
    """Migrate the engine's tables, then step whenever readings commit, and at least every
    `interval_s` (immediately again while the store has more than a batch of new readings).

    On PostgreSQL the engine LISTENs on ingest's readings channel (`ingest.notify`): a
    committed batch wakes it at once, and `interval_s` is only the fallback poll (and the
    cadence of time-driven checks). On SQLite it polls every `interval_s`. A failed step
    (database outage) is logged once and retried from the same cursor.

    Raises:
        StoreError: the store cannot be reached or migrated (or, with `once`, the step failed).
    """
    store.migrate(url)
    engine = store.make_engine(url)
    runner = Runner(engine, sink=sink, overrides=overrides or {})
    # LISTEN before the first step: a batch committed after a step read the store and before
    # its wait began is still announced to this connection.
    waker = open_waker(engine, [READINGS_CHANNEL]) if not once else Poller()
    failing = False
    try:
        while True:
            try:
                result = runner.step(datetime.now(UTC))
            except SQLAlchemyError as exc:
                if once:
                    raise StoreError(f"evaluation not committed: {exc}") from exc
                if not failing:  # log once per outage; the step is retried from the same cursor
                    log.error("%s: evaluation not committed, retrying: %s", runner.name, exc)
                failing = True
                time.sleep(interval_s)
                continue
            if failing:
                log.info("%s: evaluations committed again", runner.name)
                failing = False
            if once:
                return
            if result.caught_up:
                waker.wait(interval_s)
    finally:
        waker.close()
        engine.dispose()
