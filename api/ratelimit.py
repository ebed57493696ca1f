"""Rate limits per token (pure): token buckets, time passed in.

Each key (a token id, or a client address for requests without a valid token) has a bucket of
`burst` requests that refills at `rate_per_s`. A request that finds the bucket empty is refused
with the whole seconds until one request's worth has refilled (``Retry-After``). Buckets live
in one process: replicas behind a load balancer each count their own share.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_s: float


class TokenBuckets:
    """A bounded set of token buckets (least recently used keys are forgotten first)."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s, burst and max_keys must be positive")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now_s: float) -> int | None:
        """Spend one request of `key`'s bucket at monotonic time `now_s`.

        Returns None when the request may go ahead, else the seconds to wait (>= 1).
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self._burst, now_s)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now_s - bucket.at_s)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.at_s = now_s
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))
