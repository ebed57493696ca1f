"""Retry schedule of webhook deliveries (pure: the clock and the jitter come in as arguments).

The schedule is Svix's (docs.svix.com "Retries"): an attempt
immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, about 27.6 hours in all.
Each delay is spread by up to +-20 % jitter so that endpoints coming back after an outage are
not hit by every queued delivery in the same second. A `Retry-After` header on a 429 or 503
(RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) postpones the next attempt to no earlier
than the server asked, capped so that one header cannot park a delivery for days.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

SVIX_DELAYS_S: Final[tuple[float, ...]] = (
    0.0,
    5.0,
    300.0,
    1800.0,
    7200.0,
    18000.0,
    36000.0,
    36000.0,
)
JITTER_FRACTION: Final = 0.2
RETRY_AFTER_CAP_S: Final = 36000.0
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays before attempt 1, 2, ... (the first is normally 0: send at once)."""

    delays_s: tuple[float, ...] = SVIX_DELAYS_S
    jitter_fraction: float = JITTER_FRACTION
    retry_after_cap_s: float = RETRY_AFTER_CAP_S

    @property
    def max_attempts(self) -> int:
        """How many attempts a delivery gets before it is given up."""
        return len(self.delays_s)

    def next_attempt_at(
        self,
        attempts_made: int,
        now: datetime,
        jitter_unit: float,
        retry_after_s: float | None = None,
    ) -> datetime | None:
        """When to make the next attempt after `attempts_made` failed ones, or None if exhausted.

        Args:
            attempts_made: failed attempts so far (1 after the first failure).
            now: the time the last attempt ended (aware UTC).
            jitter_unit: a number in [0, 1) from the caller's random source; 0.5 is no jitter.
            retry_after_s: the server's `Retry-After`, in seconds, if it sent one.

        Raises:
            ValueError: `attempts_made` < 1, `jitter_unit` outside [0, 1), or a naive `now`.
        """
        if attempts_made < 1:
            raise ValueError(f"attempts_made: must be >= 1, got {attempts_made}")
        if not 0.0 <= jitter_unit < 1.0:
            raise ValueError(f"jitter_unit: must be in [0, 1), got {jitter_unit}")
        if now.tzinfo is None:
            raise ValueError("now: must be an aware datetime")
        if attempts_made >= self.max_attempts:
            return None
        base_s = self.delays_s[attempts_made]
        delay_s = base_s * (1.0 + self.jitter_fraction * (2.0 * jitter_unit - 1.0))
        if retry_after_s is not None:
            delay_s = max(delay_s, min(retry_after_s, self.retry_after_cap_s))
        return now + timedelta(seconds=delay_s)

    def total_span_s(self) -> float:
        """Time from the first to the last attempt without jitter (about 27.6 h for Svix's)."""
        return sum(self.delays_s)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header value, or None if absent or unreadable.

    Accepts delay-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2026 07:28:00 GMT"``);
    a date in the past means 0. Unreadable values are ignored rather than trusted.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
