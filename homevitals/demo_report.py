"""What the demo saw and how it tells it: the verified webhooks (as the receiver printed
them), the report with its pass/fail rule, and the narrator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class DemoReport:
    """What the demo saw; `ok` when every expected alert arrived as a webhook."""

    directory: Path
    readings_held: int = 0
    readings_stored: int = 0
    paired: list[str] = field(default_factory=list)
    alerts: dict[str, tuple[str, str]] = field(default_factory=dict)  # alert id -> rule, prio
    webhooks: list[Webhook] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    extra_endpoints: dict[str, str] = field(default_factory=dict)  # url -> endpoint id
    pending_deliveries: int = 0
    patient_id: str = ""
    db_url: str = ""
    elapsed_s: float = 0.0
    # `homevitals audit verify` on the record store after the run (None: not run).
    audit_ok: bool | None = None
    audit_line: str = ""

    def opened_by_rule(self) -> dict[str, set[str]]:
        """Alert ids of the `alert.opened` webhooks received, per rule."""
        out: dict[str, set[str]] = {}
        for hook in self.webhooks:
            if hook.type == "alert.opened" and hook.rule_id and hook.alert_id:
                out.setdefault(hook.rule_id, set()).add(hook.alert_id)
        return out

    def missing(self) -> dict[str, str]:
        """Per expected rule not satisfied, what was received instead.

        Readings are reported, not judged: a scenario's faulty devices store duplicates and
        send malformed records, which the gateway deduplicates and quarantines.
        """
        got = self.opened_by_rule()
        out: dict[str, str] = {}
        for rule, count in self.expected.items():
            have = len(got.get(rule, ()))
            if have < count:
                out[rule] = f"{have} of {count} alert.opened webhooks"
        return out

    @property
    def ok(self) -> bool:
        """Every expected alert arrived as a verified `alert.opened` webhook, and the audit
        trail verified intact (when it was checked)."""
        return not self.missing() and self.audit_ok is not False

    def summary_lines(self) -> list[str]:
        """The closing summary."""
        got = self.opened_by_rule()
        lines = [
            "summary",
            f"  devices paired:      {len(self.paired)} ({', '.join(self.paired) or '-'})",
            f"  readings:            {self.readings_held} on the devices, "
            f"{self.readings_stored} in the record store",
            f"  alerts opened:       {len(self.alerts)} "
            f"({', '.join(sorted({r for r, _ in self.alerts.values()})) or '-'})",
            f"  webhooks verified:   {len(self.webhooks)} "
            f"({', '.join(sorted({h.type for h in self.webhooks})) or '-'})",
        ]
        if self.readings_stored < self.readings_held:
            lines.append(
                f"  note: {self.readings_held - self.readings_stored} readings held by the "
                "devices are not in the record store (device faults: duplicates, malformed or "
                "interrupted transfers; the gateway's quarantine is in gateway/gateway.sqlite)"
            )
        for rule, count in self.expected.items():
            have = len(got.get(rule, ()))
            mark = "ok" if have >= count else "MISSING"
            lines.append(f"  expected {rule}: {have}/{count} received  {mark}")
        if self.audit_ok is not None:
            mark = "ok" if self.audit_ok else "BROKEN"
            lines.append(f"  audit trail:         {self.audit_line}  {mark}")
        lines.append(f"  took {self.elapsed_s:.1f} s; files in {self.directory}")
        failure = f"missing {self.missing()}" if self.missing() else "audit trail broken"
        lines.append("result: " + ("PASS" if self.ok else f"FAIL, {failure}"))
        return lines


class Narrator:
    """Prints the demo's story with the elapsed time."""

    def __init__(self, say: Say) -> None:
        self._say = say
        self._t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self._t0:5.1f}s] {text}")

    @property
    def elapsed_s(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self._t0


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

    return Webhook(
        webhook_id=str(item.get("webhook_id")),
        type=str(body.get("type")),
        rule_id=text(data.get("rule_id")),
        priority=text(data.get("priority")),
        alert_id=text(data.get("alert_id")),
        body=body,
    )
