"""The alerts package's base exception (one base exception per package)."""

from __future__ import annotations


class AlertsError(Exception):
    """Base class of every error raised by the alerts package (rules, engine, delivery)."""
