"""The port through which the engine reads readings, and an in-memory implementation.

`readings_after` follows a cursor (the store's `readings.id`, or a file's line number) and
`readings_between` loads a window by measurement time. `alerts.engine.store_source.StoreSource`
implements it over the record store, `ColumnsSource` over columns already in memory (a CSV
file, a simulated scenario).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import numpy as np

from alerts.rules.columns import ReadingColumns


class ReadingSource(Protocol):
    """Where the engine reads readings from."""

    def readings_after(self, after_id: int, limit: int) -> ReadingColumns:
        """Up to `limit` readings with cursor > `after_id`, lowest cursor first (identical
        readings under other cursors included: the caller's cursor passes every row read, and
        its window counts them once)."""
        ...

    def readings_between(self, start: datetime, end: datetime) -> ReadingColumns:
        """All readings measured in [start, end]."""
        ...


class ColumnsSource:
    """`ReadingSource` over columns in memory (cursor = `cols.cursor`)."""

    def __init__(self, cols: ReadingColumns) -> None:
        self._cols = cols

    def readings_after(self, after_id: int, limit: int) -> ReadingColumns:
        """See `ReadingSource`."""
        rows = np.flatnonzero(self._cols.cursor > after_id)
        rows = rows[np.argsort(self._cols.cursor[rows], kind="stable")][:limit]
        return self._cols.take(np.sort(rows))

    def readings_between(self, start: datetime, end: datetime) -> ReadingColumns:
        """See `ReadingSource`."""
        t = self._cols.measured_at_s
        return self._cols.take((t >= int(start.timestamp())) & (t <= int(end.timestamp())))
