"""Webhook bodies: thin (docs/threat-model.md, webhooks), deterministic, valid against the
published schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from alerts.delivery import ack_token
from alerts.delivery.payload import LinkConfig, StoredEvent, render
from alerts.events import EventType, Priority, event_id_for

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "alerts/delivery/schema/event.v1.json").read_text()
)
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
LINKS = LinkConfig("https://api.example.org/v1/", "https://ack.example.org", KEY)


def event(
    type_: EventType, priority: Priority | None = Priority.HIGH, **extra: object
) -> StoredEvent:
    return StoredEvent(
        event_id=event_id_for(type_, "alert-7", 1),
        type=type_,
        occurred_at=AT,
        patient_id="pat-42",
        alert_id="alert-7",
        rule_id="bp.stage2",
        priority=priority,
        revision=1,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("type_", list(EventType))
def test_every_event_type_validates_against_the_schema(type_: EventType) -> None:
    stored = event(type_, tier=1, subject_id="x", page_members={"team-1": ("m1", "m2")})
    body = json.loads(render(stored, "team-1", LINKS))
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        body
    )
    assert body["type"] == type_.value


def test_high_priority_opened_event_is_thin_and_carries_one_link_per_paged_member() -> None:
    opened = event(EventType.ALERT_OPENED, page_members={"team-1": ("m1", "m2"), "team-2": ("x",)})
    body = json.loads(render(opened, "team-1", LINKS))
    links = body["data"]["links"]["acknowledge_members"]
    tokens = {m: url.removeprefix("https://ack.example.org/ack/") for m, url in links.items()}
    assert body == {
        "type": "alert.opened",
        "timestamp": "2026-03-01T12:00:00Z",
        "data": {
            "event_id": event_id_for(EventType.ALERT_OPENED, "alert-7", 1),
            "revision": 1,
            "alert_id": "alert-7",
            "rule_id": "bp.stage2",
            "priority": "high",
            "patient": {"reference": "Patient/pat-42"},
            "page_member_ids": ["m1", "m2"],
            "links": {
                "alert": "https://api.example.org/v1/alerts/alert-7",
                "acknowledge_members": {
                    m: f"https://ack.example.org/ack/{tokens[m]}" for m in ("m1", "m2")
                },
            },
        },
    }
    for member, token in tokens.items():
        claims = ack_token.verify(token, KEY, AT)
        assert (claims.alert_id, claims.team_id, claims.member_id) == ("alert-7", "team-1", member)
        assert claims.event_id == opened.event_id
    assert tokens["m1"] != tokens["m2"]


def test_low_priority_and_resolved_events_carry_no_ack_link() -> None:
    paged = {"team-1": ("m1",)}
    for ev in (
        event(EventType.ALERT_OPENED, Priority.LOW, page_members=paged),
        event(EventType.ALERT_RESOLVED, page_members=paged),
    ):
        links = json.loads(render(ev, "team-1", LINKS))["data"]["links"]
        assert "acknowledge_members" not in links


def test_escalations_list_the_receiving_teams_members_to_page() -> None:
    ev = event(EventType.ALERT_ESCALATED, tier=1, page_members={"team-1": ("m1",), "team-2": ()})
    assert json.loads(render(ev, "team-1", LINKS))["data"]["page_member_ids"] == ["m1"]
    assert json.loads(render(ev, "team-2", LINKS))["data"]["page_member_ids"] == []
    assert json.loads(render(ev, "team-3", LINKS))["data"]["page_member_ids"] == []


def test_the_body_is_the_same_bytes_every_time() -> None:
    ev = event(EventType.ALERT_ESCALATED, tier=2)
    assert render(ev, "team-1", LINKS) == render(ev, "team-1", LINKS)


def test_no_phi_canaries_can_reach_the_body() -> None:
    # The body is built from ids only: the StoredEvent has no field a name or value could use.
    body = render(event(EventType.ALERT_UPDATED), "team-1", LINKS).decode()
    for canary in ("mmHg", "mmol", "systolic", "glucose", "name", "birth", "phone"):
        assert canary not in body


def test_naive_time_is_refused() -> None:
    naive = StoredEvent(
        "e", EventType.ALERT_OPENED, AT.replace(tzinfo=None), "p", "a", None, None, 1
    )
    with pytest.raises(ValueError, match="occurred_at"):
        render(naive, "team-1", LINKS)
