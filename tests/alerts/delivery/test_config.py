"""The development flag for loopback receivers (docs/threat-model.md, webhooks): nothing the
project ships turns the loopback/http flag on, and the shipped Python defaults keep it off."""

from __future__ import annotations

import re
from pathlib import Path

from alerts.delivery.settings import Settings
from alerts.delivery.ssrf import SsrfPolicy

ROOT = Path(__file__).parents[3]
FLAG = re.compile(r"HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS\s*[:=]\s*[\"']?(\w+)", re.IGNORECASE)
SHIPPED = ("docker-compose*.yml", "docker-compose*.yaml", "Dockerfile", "deploy/**/*", "*.env")


def test_flag_defaults_are_off() -> None:
    assert Settings.model_fields["allow_loopback_receivers"].default is False
    assert SsrfPolicy().allow_loopback is False


def test_no_shipped_configuration_sets_the_loopback_flag() -> None:
    files = {p for pattern in SHIPPED for p in ROOT.glob(pattern) if p.is_file()}
    offenders = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in sorted(files)
        for m in FLAG.finditer(path.read_text(errors="replace"))
        if m.group(1).lower() not in {"false", "0", "no", "off"}
    ]
    assert offenders == []


def test_the_scan_recognises_the_flag() -> None:
    sample = "environment:\n  HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS: 'true'\n"
    assert [m.group(1) for m in FLAG.finditer(sample)] == ["true"]
