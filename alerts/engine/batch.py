"""`homevitals alerts evaluate --db URL --since T`: replay the record store's history.

Reads the readings measured in [since - lookback, until] from the store (nothing is written)
and runs `alerts.engine.replay.replay` over them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from alerts.engine.errors import StoreError
from alerts.engine.evaluate import Profiles
from alerts.engine.replay import replay
from alerts.engine.store import make_engine
from alerts.engine.store_source import readings_between
from alerts.rules.catalog import Overrides


def replay_store(
    url: str,
    since: datetime,
    until: datetime,
    *,
    step_s: int = 3600,
    lookback_d: float = 35.0,
    overrides: Overrides | None = None,
    profiles: Profiles | None = None,
) -> list[dict[str, object]]:
    """Every episode the rules would have opened between `since` and `until`.

    Raises:
        StoreError: the store could not be read.
        ValueError: `until` is before `since`.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            cols = readings_between(conn, since - timedelta(days=lookback_d), until)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read readings: {exc}") from exc
    finally:
        engine.dispose()
    return replay(
        cols, int(since.timestamp()), int(until.timestamp()), step_s=step_s,
        lookback_d=lookback_d, overrides=overrides, profiles=profiles,
    )  # fmt: skip
