"""The demo's one exception type."""

from __future__ import annotations


class DemoError(RuntimeError):
    """The demo could not set up or run one of its parts (the message names which)."""
