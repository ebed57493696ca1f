"""Scale-out of the engine: workers share the patients through leases in the record store.

Patients fall into `partitions.PARTITIONS` partitions (by a hash of their id). Each row of
`alert_engine_leases` says which worker owns a partition until when, an epoch (+1 on every
claim) and the last `readings.id` evaluated for it. A worker (`LeaseKeeper`):

- `maintain()`, in its own short transaction, every `lease_s / 5`: heartbeats in
  `alert_engine_workers`, renews its leases, releases partitions beyond its fair share of the
  live workers and claims free or expired ones up to it (`FOR UPDATE SKIP LOCKED`: never a
  partition another worker is evaluating right now). Times are the database's clock.
- `enter()`, inside each evaluation transaction: locks the lease rows it owns (`FOR UPDATE`)
  and evaluates only those partitions; the step's commit records their cursors and renews
  them. A claim by another worker locks the same row, so it skips a partition being evaluated
  (`SKIP LOCKED`) and otherwise sees the cursor the last step left; a row still owned by this
  worker was claimed by nobody since, so nobody else evaluated it: each reading is evaluated
  for its patient by exactly one worker. A SIGKILLed worker's transaction is rolled back by
  the server, its leases expire after `lease_s`, and the survivors claim its partitions and
  continue from their cursors.
- A changed set of partitions or epochs tells the runner to reload its window.

PostgreSQL only (SQLite has one writer: `WholeStore`). The whole-store runner takes the
engine's advisory lock exclusively and refuses to run while workers hold leases; workers take
it shared, so the two kinds never evaluate at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alerts.engine import store, tables
from alerts.engine.errors import StoreError
from alerts.engine.partitions import PARTITIONS, fair_share

log = logging.getLogger(__name__)

_L = tables.alert_engine_leases
_W = tables.alert_engine_workers
NOW: Final = sa.func.clock_timestamp()
FORGET_WORKERS_AFTER: Final = sa.text("interval '1 hour'")


class Scope(Protocol):
    """Which patients an evaluation covers, and where its cursor is kept."""

    def enter(self, conn: sa.Connection) -> Held:
        """Lock what the evaluation needs (in its transaction) and say what it covers."""
        ...

    def commit(self, conn: sa.Connection, held: Held, cursor: int, now: datetime) -> None:
        """Record that readings up to `cursor` are evaluated (in the same transaction)."""
        ...


@dataclass(frozen=True, slots=True)
class Held:
    """What one evaluation may cover: `partitions` (None: every patient) and, per partition
    (key None for the whole store), the last `readings.id` evaluated and the lease epoch."""

    partitions: frozenset[int] | None
    cursors: Mapping[int | None, int]
    epochs: Mapping[int | None, int]

    @property
    def cursor(self) -> int:
        """The lowest cursor: every reading above it may be new for some partition."""
        return min(self.cursors.values(), default=0)


class WholeStore:
    """The single-writer scope: every patient, the engine's cursor row, the advisory lock."""

    def __init__(self, name: str = store.DEFAULT_ENGINE) -> None:
        self.name = name

    def enter(self, conn: sa.Connection) -> Held:
        """Lock the engine and read the cursor.

        Raises:
            StoreError: scale-out workers hold leases on this store.
        """
        store.lock_engine(conn)
        if conn.dialect.name == "postgresql" and _live_leases(conn):
            raise StoreError(
                "engine workers (alerts run --scale-out) hold leases on this store: "
                "run every engine of a store the same way"
            )
        cursor = store.read_cursor(conn, self.name)
        return Held(None, {None: cursor}, {None: 0})

    def commit(self, conn: sa.Connection, held: Held, cursor: int, now: datetime) -> None:
        """Write the cursor (in the evaluation's transaction)."""
        store.write_cursor(conn, self.name, cursor, now)


def _live_leases(conn: sa.Connection) -> bool:
    try:
        query = sa.select(sa.func.count()).where(_L.c.owner.is_not(None), _L.c.lease_until > NOW)
        return bool(conn.execute(query).scalar())
    except sa.exc.ProgrammingError:  # pragma: no cover - table missing: not migrated
        return False


class LeaseKeeper:
    """One worker's side of the lease protocol (see module doc)."""

    def __init__(
        self, worker_id: str, lease_s: float = 10.0, *, name: str = store.DEFAULT_ENGINE
    ) -> None:
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.name = name
        self.n = PARTITIONS

    @property
    def maintain_every_s(self) -> float:
        """How often `maintain` must run to keep the leases (and to notice expired ones)."""
        return self.lease_s / 5

    def _until(self) -> sa.ColumnElement[datetime]:
        return NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, self.lease_s)

    def maintain(self, conn: sa.Connection) -> frozenset[int]:
        """Heartbeat, renew, release surplus, claim up to the fair share; the partitions held.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the store failed (the leases lapse if it lasts).
        """
        until = self._until()
        upsert = postgresql.insert(_W).values(worker_id=self.worker_id, seen_until=until)
        conn.execute(
            upsert.on_conflict_do_update(index_elements=["worker_id"], set_={"seen_until": until})
        )
        conn.execute(sa.delete(_W).where(_W.c.seen_until < NOW - FORGET_WORKERS_AFTER))
        live = list(conn.execute(sa.select(_W.c.worker_id).where(_W.c.seen_until > NOW)).scalars())
        share = fair_share(live, self.worker_id, self.n)
        # Still the owner (even past the expiry): nobody claimed it since, so nobody else
        # evaluated it, and the window and cursor of this worker are still right.
        held = set(
            conn.execute(
                sa.update(_L)
                .where(_L.c.owner == self.worker_id)
                .values(lease_until=until)
                .returning(_L.c.partition)
            ).scalars()
        )
        if len(held) > share:
            surplus = sorted(held)[share:]
            conn.execute(
                sa.update(_L)
                .where(_L.c.owner == self.worker_id, _L.c.partition.in_(surplus))
                .values(owner=None, lease_until=None)
            )
            held -= set(surplus)
            log.info("%s: released %d partitions (%d workers)", self.name, len(surplus), len(live))
        elif len(held) < share:
            free = (
                sa.select(_L.c.partition)
                .where(sa.or_(_L.c.owner.is_(None), _L.c.lease_until <= NOW))
                .order_by(_L.c.partition)
                .limit(share - len(held))
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            claimed = set(
                conn.execute(
                    sa.update(_L)
                    .where(_L.c.partition.in_(free))
                    .values(owner=self.worker_id, lease_until=until, epoch=_L.c.epoch + 1)
                    .returning(_L.c.partition)
                ).scalars()
            )
            if claimed:
                log.info("%s: claimed %d partitions (%d workers)", self.name, len(claimed),
                         len(live))  # fmt: skip
            held |= claimed
        return frozenset(held)

    def release_all(self, conn: sa.Connection) -> None:
        """Give every partition up now and leave the live workers (a clean stop)."""
        conn.execute(
            sa.update(_L).where(_L.c.owner == self.worker_id).values(owner=None, lease_until=None)
        )
        conn.execute(sa.delete(_W).where(_W.c.worker_id == self.worker_id))

    def enter(self, conn: sa.Connection) -> Held:
        """Lock this worker's unexpired lease rows for the evaluation transaction."""
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(store.ENGINE_LOCK_KEY)))
        # Owned rows, locked until this transaction ends: a claim by another worker (which
        # locks the row too) waits for it, and then sees the cursor it leaves.
        rows = conn.execute(
            sa.select(_L.c.partition, _L.c.last_reading_id, _L.c.epoch)
            .where(_L.c.owner == self.worker_id)
            .with_for_update()
        ).all()
        legacy: int | None = None
        cursors: dict[int | None, int] = {}
        for partition, last, _ in rows:
            if last is None and legacy is None:  # never evaluated by a worker: continue
                legacy = store.read_cursor(conn, self.name)  # from the engine's cursor
            cursors[int(partition)] = int(last if last is not None else legacy or 0)
        epochs: dict[int | None, int] = {int(p): int(e) for p, _, e in rows}
        return Held(frozenset(int(p) for p, _, _ in rows), cursors, epochs)

    def commit(self, conn: sa.Connection, held: Held, cursor: int, now: datetime) -> None:
        """Record `cursor` for the partitions evaluated (never lower than a partition's own
        cursor) and renew their leases, in the evaluation's transaction: the rows were locked
        throughout, so a step longer than the lease period does not lose them."""
        if held.partitions:
            last = sa.func.greatest(sa.func.coalesce(_L.c.last_reading_id, 0), cursor)
            conn.execute(
                sa.update(_L)
                .where(_L.c.owner == self.worker_id, _L.c.partition.in_(sorted(held.partitions)))
                .values(last_reading_id=last, lease_until=self._until())
            )
