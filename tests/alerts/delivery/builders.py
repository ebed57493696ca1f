"""Care-team records and events for the delivery tests (real rows through the real registry)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery.guard import Resolver, system_resolver
from alerts.delivery.payload import LinkConfig
from alerts.delivery.schedule import RetrySchedule
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.worker import Clock, DeliveryWorker, WorkerConfig
from alerts.events import AlertEvent, EventType, Priority, event_id_for
from careteam import registry
from careteam.secrets import SecretBox, new_key_entry
from tests.support.record import follow

DEV = SsrfPolicy(allow_loopback=True)
SECRETS_KEYS = new_key_entry("test")  # HV_SECRETS_KEYS of the tests' worker processes
BOX = SecretBox.from_setting(SECRETS_KEYS)
ALL_TYPES = tuple(t.value for t in EventType)
ACK_KEY = b"k" * 32
LINKS = LinkConfig(
    api_base_url="https://api.example.org/v1", ack_base_url="http://127.0.0.1:1", ack_key=ACK_KEY
)
# Short test-scale schedule: 4 attempts, seconds apart (the Svix schedule is tested on its own).
SHORT = RetrySchedule(delays_s=(0.0, 2.0, 4.0, 8.0), jitter_fraction=0.2)


@dataclass
class Team:
    institution_id: str
    team_id: str
    member_id: str


def make_team(
    conn: sa.Connection, at: datetime, patient_id: str, tier: int = 0, name: str = "t"
) -> Team:
    inst = registry.add_institution(conn, f"{name} clinic", "hospital_clinic", at)
    team = registry.add_team(conn, inst, f"{name} team", at)
    member = registry.add_member(conn, team, f"{name} nurse", role="nurse", tier=0, at=at)
    follow(conn, team, patient_id, at, tier=tier)
    return Team(inst, team, member)


def add_endpoint(
    conn: sa.Connection,
    team: Team,
    url: str,
    at: datetime,
    *,
    types: tuple[str, ...] = ALL_TYPES,
    tier: int = 0,
) -> endpoints.RegisteredEndpoint:
    return endpoints.register_endpoint(
        conn, team.team_id, url, types, at=at, policy=DEV, tier=tier, box=BOX
    )


def opened(
    alert_id: str, patient_id: str, at: datetime, priority: Priority = Priority.HIGH
) -> AlertEvent:
    return AlertEvent(
        event_id=event_id_for(EventType.ALERT_OPENED, alert_id, 1),
        type=EventType.ALERT_OPENED,
        occurred_at=at,
        patient_id=patient_id,
        alert_id=alert_id,
        rule_id="bp.stage2",
        priority=priority,
        revision=1,
    )


def worker(
    engine: sa.Engine,
    clock: Clock,
    *,
    timeout_s: float = 1.0,
    schedule: RetrySchedule = SHORT,
    resolver: Resolver = system_resolver,
    links: LinkConfig = LINKS,
    failing_alarm_after_s: float = 900.0,
) -> DeliveryWorker:
    config = WorkerConfig(
        links=links,
        secrets=BOX,
        policy=DEV,
        schedule=schedule,
        timeout_s=timeout_s,
        lease_s=30,
        failing_alarm_after=timedelta(seconds=failing_alarm_after_s),
    )
    return DeliveryWorker(engine, config, clock, random.Random(8), resolver=resolver)
