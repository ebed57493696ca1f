"""What the care team's receiver saw (the verified webhooks it printed) and how the demo tells
the story as it goes (the narrator)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

Say = Callable[[str], None]


@dataclass(frozen=True)
class Webhook:
    """One verified webhook the receiver printed."""

    webhook_id: str
    type: str
    rule_id: str | None
    priority: str | None
    alert_id: str | None
    body: dict[str, object]
    patient_id: str | None = None
    alert_link: str | None = None


def parse_webhook_line(line: str) -> Webhook | None:
    """A receiver output line (`homevitals webhook receive`) as a `Webhook`, or None."""
    try:
        item = json.loads(line)
    except ValueError:
        return None
    if not isinstance(item, dict) or not isinstance(item.get("event"), dict):
        return None
    body = item["event"]
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    assert isinstance(data, dict)

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    patient = data.get("patient")
    reference = text(patient.get("reference")) if isinstance(patient, dict) else None
    links = data.get("links")
    return Webhook(
        webhook_id=str(item.get("webhook_id")),
        type=str(body.get("type")),
        rule_id=text(data.get("rule_id")),
        priority=text(data.get("priority")),
        alert_id=text(data.get("alert_id")),
        body=body,
        patient_id=reference.removeprefix("Patient/") if reference else None,
        alert_link=text(links.get("alert")) if isinstance(links, dict) else None,
    )


class Narrator:
    """Prints the demo's story with the elapsed time."""

    def __init__(self, say: Say) -> None:
        self._say = say
        self._t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self._t0:5.1f}s] {text}")

    def plain(self, text: str) -> None:
        """Print without the elapsed time (the summary)."""
        self._say(text)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self._t0
