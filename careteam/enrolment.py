"""Hub enrolment codes and the attempt limit (pure: randomness and time come in).

A care team makes a short single-use code for a patient (or a household's patients); the
patient types it on the hub's pairing page, or an installer runs ``homevitals gateway enrol
CODE``. The code is ten characters of Crockford's base32 (no I, L, O, U: nothing to confuse on
a phone screen), shown as ``ABCDE-FGHJK``; typing is forgiving (case, spaces and dashes are
ignored, ``O``->``0``, ``I``/``L``->``1``). Only its SHA-256 is stored. With about 50 bits and
at most `AttemptPolicy.max_failures_per_source` wrong guesses per source per window, guessing
a live code is out of reach in the hours it lives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from careteam.errors import InvalidFieldError

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_CHARS: Final = 10
CODE_BYTES: Final = 7  # 56 random bits; 50 are used
DEFAULT_TTL: Final = timedelta(hours=24)
MAX_TTL: Final = timedelta(hours=72)
_TYPO: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})


def format_code(random_bytes: bytes) -> str:
    """A code from at least 7 random bytes, as shown: ``ABCDE-FGHJK``.

    Raises:
        ValueError: fewer than 7 bytes.
    """
    if len(random_bytes) < CODE_BYTES:
        raise ValueError(f"random_bytes: need {CODE_BYTES}, got {len(random_bytes)}")
    number = int.from_bytes(random_bytes[:CODE_BYTES], "big")
    chars = []
    for _ in range(CODE_CHARS):
        number, digit = divmod(number, 32)
        chars.append(ALPHABET[digit])
    text = "".join(chars)
    return f"{text[:5]}-{text[5:]}"


def normalise_code(typed: str) -> str:
    """The canonical form of a typed code.

    Raises:
        InvalidFieldError: not ten base32 characters once spaces and dashes are dropped
            (field ``"code"``).
    """
    text = "".join(ch for ch in typed.upper() if ch not in " -\t").translate(_TYPO)
    if len(text) != CODE_CHARS or any(ch not in ALPHABET for ch in text):
        raise InvalidFieldError("code", f"must be {CODE_CHARS} letters and digits")
    return text


def code_digest(typed: str) -> str:
    """SHA-256 (hex) of the normalised code: what the record stores and looks up.

    Raises:
        InvalidFieldError: see `normalise_code`.
    """
    return hashlib.sha256(normalise_code(typed).encode("ascii")).hexdigest()


def check_ttl(ttl: timedelta) -> timedelta:
    """A code lives between 5 minutes and `MAX_TTL`.

    Raises:
        InvalidFieldError: field ``"ttl"``.
    """
    if not timedelta(minutes=5) <= ttl <= MAX_TTL:
        raise InvalidFieldError("ttl", f"must be between 5 minutes and {MAX_TTL}")
    return ttl


@dataclass(frozen=True, slots=True)
class AttemptPolicy:
    """How many failed redemptions are tolerated within `window` (per source, and in all)."""

    window: timedelta = timedelta(minutes=15)
    max_failures_per_source: int = 5
    max_failures_total: int = 100


def retry_after(
    failures_from_source: int, failures_total: int, policy: AttemptPolicy
) -> timedelta | None:
    """None when another attempt may be made now; else how long to wait."""
    if (
        failures_from_source >= policy.max_failures_per_source
        or failures_total >= policy.max_failures_total
    ):
        return policy.window
    return None
