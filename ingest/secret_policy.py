"""Which secrets a server-side setting refuses (pure): empty, placeholder, or weak.

Used by the settings of ingest and delivery at start-up, so a deployment cannot come up with
the value an example file ships or a password guessable in an afternoon. Outside development
(`HV_ENVIRONMENT` other than ``development``; the default is production) a secret must be at
least `MIN_LENGTH` characters with at least `MIN_DISTINCT` different ones; in development only
empty and placeholder values are refused. Secrets inside database URLs are the URL's password.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote, urlsplit

MIN_LENGTH: Final = 16
MIN_DISTINCT: Final = 8
PLACEHOLDERS: Final = frozenset(
    {"changeme", "change-me", "change_me", "placeholder", "secret", "password", "xxx", "todo"}
)
# Fragments of the values example files ship (`.env.example` says "change-me-...").
PLACEHOLDER_FRAGMENTS: Final = ("change-me", "changeme", "change_me", "replace-me", "<", ">")
DEVELOPMENT: Final = "development"


def weakness(secret: str, *, development: bool) -> str | None:
    """Why `secret` is refused, in words, or None when it is acceptable."""
    text = secret.strip()
    if not text:
        return "is empty"
    lowered = text.lower()
    if lowered in PLACEHOLDERS or any(f in lowered for f in PLACEHOLDER_FRAGMENTS):
        return "is still a placeholder value"
    if development:
        return None
    if len(text) < MIN_LENGTH:
        return f"is weak: shorter than {MIN_LENGTH} characters"
    if len(set(text)) < MIN_DISTINCT:
        return f"is weak: fewer than {MIN_DISTINCT} different characters"
    return None


def url_password(url: str) -> str | None:
    """The password inside a database URL (``scheme://user:password@host/db``), if any."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return None if password is None else unquote(password)


def is_development(environment: str | None) -> bool:
    """Whether `HV_ENVIRONMENT`'s value means development (anything else is production)."""
    return (environment or "").strip().lower() == DEVELOPMENT
