"""Which partition a patient belongs to, for engine workers that share the patients (pure).

A patient's partition is the first 32 bits of the MD5 of its id, modulo the number of
partitions: stable across processes, machines and Python versions (unlike `hash()`), and the
same expression in PostgreSQL (`PG_PARTITION_SQL`), so the store filters readings by partition
without a lookup table. MD5 here is a spreading function, not security.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

# Partitions in the lease table (fixed by the engine's migration a0002): many more than workers,
# so shares stay even (64 over 3 workers: 22, 21, 21).
PARTITIONS: Final = 64
# The same value as `partition_of` for a text column `patient_id` (PostgreSQL).
PG_PARTITION_SQL: Final = "(('x' || substr(md5(patient_id), 1, 8))::bit(32)::bigint % {n})"


def partition_of(patient_id: str, n: int = PARTITIONS) -> int:
    """The partition of `patient_id` among `n`."""
    digest = hashlib.md5(patient_id.encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % n


def partitions_of(patient_ids: Sequence[str], n: int = PARTITIONS) -> npt.NDArray[np.int64]:
    """`partition_of` for each id, as an array indexed like `patient_ids`."""
    return np.fromiter((partition_of(p, n) for p in patient_ids), np.int64, len(patient_ids))


def fair_share(workers: Sequence[str], me: str, n: int = PARTITIONS) -> int:
    """How many of `n` partitions `me` should hold among the live `workers` (ids sorted: the
    first `n % len(workers)` hold one more)."""
    ordered = sorted(set(workers) | {me})
    index = ordered.index(me)
    base, extra = divmod(n, len(ordered))
    return base + (1 if index < extra else 0)


def keep(partitions: Iterable[int], patient_ids: Sequence[str], n: int = PARTITIONS) -> list[bool]:
    """For each patient id, whether its partition is among `partitions`."""
    held = frozenset(partitions)
    return [partition_of(p, n) in held for p in patient_ids]
