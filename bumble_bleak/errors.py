"""Errors of the bumble_bleak package (pure: no I/O)."""

from __future__ import annotations


class BumbleBleakError(Exception):
    """Base of every bumble_bleak error: a transport that cannot be opened, a controller failure,
    an advertising payload that does not fit or does not parse."""
