"""The data-freshness state machine (pure): which technical conditions are active, and the
episode changes they make. None of them may ever be read as a patient not measuring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.engine.episodes import OpenEpisode
from alerts.events import EventType, Priority
from alerts.freshness.core import (
    CLOCK_SKEW,
    DEVICE_SILENT,
    HUB_OFFLINE,
    PIPELINE_BEHIND,
    STORAGE_FULL,
    DeviceFact,
    FreshnessParams,
    HubFact,
    PipelineFact,
    announcements,
    conditions,
    transitions,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
P = FreshnessParams(hub_offline_grace_s=600, heartbeat_timeout_s=1800, pipeline_max_lag_s=300)


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def device(dev: str, gw: str = "gw-1", patient: str = "p-1", **kw: object) -> DeviceFact:
    base: dict[str, object] = {
        "device_id": dev, "gateway_id": gw, "patient_id": patient, "kind": "glucose",
        "last_contact_at": ago(minutes=5), "paired_at": ago(days=30),
    }  # fmt: skip
    base.update(kw)
    return DeviceFact(**base)  # type: ignore[arg-type]


def test_a_healthy_household_has_no_finding() -> None:
    hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=2))]
    assert conditions(NOW, hubs, [device("m1"), device("c1")], [], P) == []


def test_a_hub_that_said_offline_is_one_medium_finding_per_patient_covering_its_devices() -> None:
    hubs = [HubFact("gw-1", False, ago(minutes=11), ago(minutes=12))]
    devices = [device("m1", last_contact_at=ago(days=3)), device("c1"), device("m2", patient="p-2")]
    found = conditions(NOW, hubs, devices, [], P)
    assert [(c.rule_id, c.patient_id, c.subject) for c in found] == [
        (HUB_OFFLINE, "p-1", "hub:gw-1"),
        (HUB_OFFLINE, "p-2", "hub:gw-1"),
    ]  # m1 is not also called silent: under an offline hub that would be a guess
    assert found[0].since == ago(minutes=11)


def test_offline_within_the_grace_period_or_back_online_is_not_a_finding() -> None:
    blip = [HubFact("gw-1", False, ago(minutes=2), ago(minutes=3))]
    assert conditions(NOW, blip, [device("m1")], [], P) == []
    back = [HubFact("gw-1", True, ago(minutes=1), ago(hours=2))]
    assert conditions(NOW, back, [device("m1")], [], P) == []


def test_a_hub_whose_heartbeat_stopped_is_offline_even_without_its_last_will() -> None:
    hubs = [HubFact("gw-1", True, ago(hours=5), ago(minutes=31))]
    [found] = conditions(NOW, hubs, [device("m1")], [], P)
    assert found.rule_id == HUB_OFFLINE and found.evidence["reason"] == "no heartbeat from the hub"


def test_a_device_the_hub_has_not_reached_for_its_cadence_is_silent() -> None:
    params = FreshnessParams(default_contact_s=3600, device_contact_s={"blood_pressure": 7200})
    hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=1))]
    devices = [
        device("m1", last_contact_at=ago(minutes=61)),
        device("c1", kind="blood_pressure", last_contact_at=ago(minutes=61)),  # within 2 h
        device("new", last_contact_at=None, paired_at=ago(minutes=10)),  # just paired
    ]
    [found] = conditions(NOW, hubs, devices, [], params)
    assert (found.rule_id, found.subject, found.since) == (
        DEVICE_SILENT,
        "device:m1",
        ago(minutes=61),
    )


def test_contact_without_readings_is_no_finding_here_that_is_adherence() -> None:
    # The hub reached the meter five minutes ago; it simply had nothing new (the patient did
    # not measure for a week). Freshness must stay quiet: adherence is the rules' business.
    hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=1))]
    assert conditions(NOW, hubs, [device("m1", last_contact_at=ago(minutes=5))], [], P) == []


def test_readings_waiting_for_the_engine_past_the_lag_are_a_high_finding() -> None:
    waiting = [PipelineFact("p-1", ago(minutes=6)), PipelineFact("p-2", ago(minutes=1))]
    [found] = conditions(NOW, [], [], waiting, P)
    assert (found.rule_id, found.patient_id, found.subject) == (PIPELINE_BEHIND, "p-1", "pipeline")


def test_transitions_open_once_resolve_when_cleared_and_ignore_clinical_episodes() -> None:
    hubs = [HubFact("gw-1", False, ago(minutes=11), None)]
    active = conditions(NOW, hubs, [device("m1")], [PipelineFact("p-1", ago(minutes=6))], P)
    opened = transitions(active, [], NOW)
    assert [(c.type, c.rule_id, c.priority) for c in opened] == [
        (EventType.ALERT_OPENED, HUB_OFFLINE, Priority.MEDIUM),
        (EventType.ALERT_OPENED, PIPELINE_BEHIND, Priority.HIGH),
    ]
    assert transitions(active, [], NOW)[0].alert_id == opened[0].alert_id  # deterministic
    episodes = [
        OpenEpisode(c.alert_id, c.patient_id, c.rule_id, c.subject, 1, c.anchor_ref, c.last_ref)
        for c in opened
    ]
    clinical = OpenEpisode("a-9", "p-1", "glucose.hypo_l2", "glucose", 1, "r", "r")
    assert transitions(active, [*episodes, clinical], NOW) == []  # still active: nothing new
    [resolved] = transitions(active[1:], [*episodes, clinical], NOW)  # the hub came back
    assert (resolved.type, resolved.rule_id, resolved.revision) == (
        EventType.ALERT_RESOLVED,
        HUB_OFFLINE,
        2,
    )


def test_a_hub_finding_is_also_announced_as_gateway_offline() -> None:
    hubs = [HubFact("gw-1", False, ago(minutes=11), None)]
    changes = transitions(conditions(NOW, hubs, [device("m1")], [], P), [], NOW)
    [event] = announcements(changes, NOW)
    assert (event.type, event.alert_id, event.priority) == (
        EventType.GATEWAY_OFFLINE,
        changes[0].alert_id,
        Priority.MEDIUM,
    )


def test_a_hub_that_says_its_storage_is_full_is_one_medium_finding_per_patient() -> None:
    hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=1), storage_full=True)]
    devices = [device("m1"), device("c1"), device("m2", patient="p-2")]
    found = conditions(NOW, hubs, devices, [], P)
    assert [(c.rule_id, c.patient_id, c.subject) for c in found] == [
        (STORAGE_FULL, "p-1", "hub:gw-1"),
        (STORAGE_FULL, "p-2", "hub:gw-1"),
    ]
    [change, _] = transitions(found, [], NOW)
    assert change.priority is Priority.MEDIUM and change.type is EventType.ALERT_OPENED
    # Offline, it is the offline finding alone (a full disk under a dead hub is a guess).
    down = [HubFact("gw-1", False, ago(minutes=11), ago(minutes=12), storage_full=True)]
    assert {c.rule_id for c in conditions(NOW, down, devices, [], P)} == {HUB_OFFLINE}


def test_a_hub_clock_off_by_more_than_the_limit_either_way_is_a_low_finding() -> None:
    def found(offset_s: float | None) -> list[str]:
        hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=1), clock_offset_s=offset_s)]
        return [c.rule_id for c in conditions(NOW, hubs, [device("m1")], [], P)]

    assert found(None) == found(299.0) == found(-299.0) == []
    assert found(7200.0) == found(-7200.0) == [CLOCK_SKEW]
    hubs = [HubFact("gw-1", True, ago(hours=1), ago(minutes=1), clock_offset_s=-7200.0)]
    [c] = conditions(NOW, hubs, [device("m1")], [], P)
    assert c.evidence["clock_offset_s"] == -7200.0 and c.evidence["max_skew_s"] == 300.0
    assert transitions([c], [], NOW)[0].priority is Priority.LOW
