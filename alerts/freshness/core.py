"""Data freshness: is the data we watch still arriving? The pure state machine.

Silence is a finding too, but never a clinical one. Three technical alarm conditions (IEC
60601-1-8 sense: the system, not the patient), each an episode per patient and subject:

- `technical.pipeline_behind` (high), subject `pipeline`: a reading of the patient has waited
  for the rules engine longer than `pipeline_max_lag_s`;
- `technical.hub_offline` (medium), subject `hub:<gateway id>`: the hub said `offline` (its
  last will, or a clean stop) `hub_offline_grace_s` ago and not `online` since, or its
  heartbeat is older than `heartbeat_timeout_s`;
- `technical.device_silent` (low), subject `device:<device id>`: the hub is up but has not
  been in contact with the device for its expected cadence (`device_contact_s` by kind);
- `technical.hub_storage_full` (medium), subject `hub:<gateway id>`: the hub is up but says
  (in its heartbeat) that its outbox cannot store new records;
- `technical.hub_clock_skew` (low), subject `hub:<gateway id>`: the hub's clock differs from
  ours by more than `clock_skew_max_s` (measured on its last heartbeat).

Priorities, by the consequence of nobody responding (IEC 60601-1-8 table 1): a pipeline that
is behind holds back *every* alarm of the patient, a level-2 hypoglycaemia included, while the
care team believes it is watching (death possible, onset prompt: high); an offline hub stops
all of one household's data, but the devices keep their records and the patient still sees
their own values (serious harm possible, onset delayed: medium); one silent device (flat
battery, out of range) loses one kind of data for a while, its memory keeping the records
(reversible, delayed: low). A hub whose disk is full is up but takes no new records: its
devices keep them in their memory until it has room again (as offline: medium). A hub whose
clock is off gives wrong receive times and clock corrections (ids and raw device times are
unaffected): the times a clinician reads may be off, nothing is lost (low).

None of these is adherence (`adherence.no_readings`, a patient not measuring): they are about
contact and transport, computed from the hub's status and heartbeat (when the hub last talked
to each device, whatever the device had to say) and from the engine's cursor, never from the
absence of readings. A device is only called silent while its hub is known to be up: under an
offline hub the one hub finding covers it.

Pure: no I/O, no clock (`now` is passed in). `conditions` says what is active; `transitions`
turns that into episode changes (open, resolve) against the open technical episodes, with
deterministic alert ids, for the engine's existing store, event and delivery machinery.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from alerts.engine.episodes import Change, OpenEpisode, alert_id_for
from alerts.events import AlertEvent, EventType, Priority, event_id_for

PIPELINE_BEHIND: Final = "technical.pipeline_behind"
HUB_OFFLINE: Final = "technical.hub_offline"
DEVICE_SILENT: Final = "technical.device_silent"
STORAGE_FULL: Final = "technical.hub_storage_full"
CLOCK_SKEW: Final = "technical.hub_clock_skew"
RULE_VERSION: Final = 1
PRIORITIES: Final = {
    PIPELINE_BEHIND: Priority.HIGH,
    HUB_OFFLINE: Priority.MEDIUM,
    STORAGE_FULL: Priority.MEDIUM,
    DEVICE_SILENT: Priority.LOW,
    CLOCK_SKEW: Priority.LOW,
}
RULES: Final = frozenset(PRIORITIES)
# Findings under which a patient's silence is their hub's (it is offline, or cannot store what
# the devices hold): `adherence.no_readings` has no data to judge them by.
HUB_SILENCES: Final = frozenset({HUB_OFFLINE, STORAGE_FULL})
_MARK_NAMESPACE: Final = uuid.UUID("9b7e1f64-3c52-5a8e-b1d0-6f2a4c8e0d17")


@dataclass(frozen=True, slots=True)
class HubFact:
    """What the hub last said about itself: status (`online`/`offline`), heartbeat time (ours),
    and from its last heartbeat: storage full, its clock minus ours (s)."""

    gateway_id: str
    online: bool
    status_at: datetime | None
    heartbeat_at: datetime | None
    storage_full: bool = False
    clock_offset_s: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceFact:
    """A device a hub reports in its heartbeat, and when the hub last talked to it."""

    device_id: str
    gateway_id: str
    patient_id: str
    kind: str
    last_contact_at: datetime | None
    paired_at: datetime


@dataclass(frozen=True, slots=True)
class PipelineFact:
    """A patient with stored readings the rules engine has not evaluated yet."""

    patient_id: str
    oldest_waiting_since: datetime  # when the oldest such reading was stored


@dataclass(frozen=True, slots=True)
class FreshnessParams:
    """Thresholds (seconds); `device_contact_s` by reading kind, `default_contact_s` else."""

    hub_offline_grace_s: float = 600.0
    heartbeat_timeout_s: float = 1800.0
    pipeline_max_lag_s: float = 300.0
    clock_skew_max_s: float = 300.0
    default_contact_s: float = 26 * 3600.0
    device_contact_s: Mapping[str, float] = field(default_factory=dict)

    def contact_s(self, kind: str) -> float:
        """The expected contact cadence of a device of `kind`."""
        return self.device_contact_s.get(kind, self.default_contact_s)


@dataclass(frozen=True, slots=True)
class Condition:
    """An active technical alarm condition; `since` is when it began (part of its identity)."""

    rule_id: str
    patient_id: str
    subject: str
    since: datetime
    evidence: Mapping[str, object]


def _age_s(now: datetime, then: datetime | None) -> float:
    return float("inf") if then is None else (now - then).total_seconds()


def _hub_down(hub: HubFact, now: datetime, p: FreshnessParams) -> tuple[datetime, str] | None:
    """(since, why) when the hub counts as offline, else None."""
    if not hub.online and hub.status_at is not None:
        if _age_s(now, hub.status_at) >= p.hub_offline_grace_s:
            return hub.status_at, "the hub said offline (last will or clean stop)"
        return None
    alive = [t for t in (hub.heartbeat_at, hub.status_at if hub.online else None) if t]
    if hub.heartbeat_at is not None and _age_s(now, max(alive)) >= p.heartbeat_timeout_s:
        return max(alive), "no heartbeat from the hub"
    return None


def conditions(
    now: datetime,
    hubs: Iterable[HubFact],
    devices: Iterable[DeviceFact],
    pipeline: Iterable[PipelineFact],
    params: FreshnessParams,
) -> list[Condition]:
    """Every active technical condition at `now`, sorted by (patient, rule, subject)."""
    out: list[Condition] = []
    hubs = list(hubs)
    down = {h.gateway_id: d for h in hubs if (d := _hub_down(h, now, params)) is not None}
    up = {h.gateway_id: h for h in hubs if h.gateway_id not in down}
    seen_hub_patient: set[tuple[str, str]] = set()
    for dev in devices:
        offline = down.get(dev.gateway_id)
        key = (dev.gateway_id, dev.patient_id)
        if offline is None and dev.gateway_id in up and key not in seen_hub_patient:
            seen_hub_patient.add(key)
            out += _hub_up_findings(up[dev.gateway_id], dev.patient_id, now, params)
        if offline is not None:
            if key not in seen_hub_patient:
                seen_hub_patient.add(key)
                since, why = offline
                out.append(
                    Condition(
                        HUB_OFFLINE,
                        dev.patient_id,
                        f"hub:{dev.gateway_id}",
                        since,
                        {"gateway_id": dev.gateway_id, "offline_since": since.isoformat(),
                         "reason": why},
                    )
                )  # fmt: skip
            continue  # silent devices under an offline hub are the hub's finding
        expected_s = params.contact_s(dev.kind)
        last = dev.last_contact_at or dev.paired_at
        if _age_s(now, last) > expected_s:
            out.append(
                Condition(
                    DEVICE_SILENT,
                    dev.patient_id,
                    f"device:{dev.device_id}",
                    last,
                    {"device_id": dev.device_id, "gateway_id": dev.gateway_id, "kind": dev.kind,
                     "last_contact_at": None if dev.last_contact_at is None
                     else dev.last_contact_at.isoformat(),
                     "expected_contact_s": expected_s},
                )
            )  # fmt: skip
    for waiting in pipeline:
        lag_s = _age_s(now, waiting.oldest_waiting_since)
        if lag_s >= params.pipeline_max_lag_s:
            out.append(
                Condition(
                    PIPELINE_BEHIND,
                    waiting.patient_id,
                    "pipeline",
                    waiting.oldest_waiting_since,
                    {"oldest_waiting_s": round(lag_s, 1),
                     "max_lag_s": params.pipeline_max_lag_s},
                )
            )  # fmt: skip
    return sorted(out, key=lambda c: (c.patient_id, c.rule_id, c.subject))


def _hub_up_findings(
    hub: HubFact, patient_id: str, now: datetime, p: FreshnessParams
) -> list[Condition]:
    """A hub that is up but cannot store (full outbox) or keeps the wrong time, for one of its
    patients."""
    subject = f"hub:{hub.gateway_id}"
    since = hub.heartbeat_at or now
    out = []
    if hub.storage_full:
        out.append(Condition(STORAGE_FULL, patient_id, subject, since,
                             {"gateway_id": hub.gateway_id, "reason": "the hub's storage is full;"
                              " its devices keep new records until it has room"}))  # fmt: skip
    offset = hub.clock_offset_s
    if offset is not None and abs(offset) > p.clock_skew_max_s:
        out.append(Condition(CLOCK_SKEW, patient_id, subject, since,
                             {"gateway_id": hub.gateway_id, "clock_offset_s": offset,
                              "max_skew_s": p.clock_skew_max_s}))  # fmt: skip
    return out


def _mark(condition: Condition, opened_at: datetime) -> str:
    """A reference for the episode's anchor (the alerts table cites a reading id there): the
    condition, its start and when this episode opens (a condition that clears and comes back
    with the same start, a device still unreached after its hub returned, is a new episode)."""
    name = (
        f"{condition.rule_id}|{condition.patient_id}|{condition.subject}|{condition.since}"
        f"|{opened_at.isoformat()}"
    )
    return str(uuid.uuid5(_MARK_NAMESPACE, name))


def transitions(
    active: Sequence[Condition], open_episodes: Sequence[OpenEpisode], now: datetime
) -> list[Change]:
    """Episode changes: open what became active, resolve what is no longer active.

    Only episodes of the technical rules are considered. Each opens with `alert.opened` and
    resolves with `alert.resolved` (acknowledgement and escalation apply as to any alert);
    `announcements` adds the `gateway.offline` event for a hub finding.
    """
    opened = {(e.patient_id, e.rule_id, e.subject): e for e in open_episodes if e.rule_id in RULES}
    changes: list[Change] = []
    now_active = set()
    for c in active:
        key = (c.patient_id, c.rule_id, c.subject)
        now_active.add(key)
        if key in opened:
            continue
        anchor = _mark(c, now)
        changes.append(
            Change(
                type=EventType.ALERT_OPENED,
                alert_id=alert_id_for(c.rule_id, RULE_VERSION, c.patient_id, c.subject, anchor),
                patient_id=c.patient_id, rule_id=c.rule_id, rule_version=RULE_VERSION,
                subject=c.subject, priority=PRIORITIES[c.rule_id], revision=1,
                anchor_ref=anchor, last_ref=anchor,
                evidence={**c.evidence, "since": c.since.isoformat(), "technical": True},
            )
        )  # fmt: skip
    for key, e in sorted(opened.items()):
        if key in now_active:
            continue
        changes.append(
            Change(
                type=EventType.ALERT_RESOLVED, alert_id=e.alert_id, patient_id=e.patient_id,
                rule_id=e.rule_id, rule_version=RULE_VERSION, subject=e.subject,
                priority=PRIORITIES[e.rule_id], revision=e.revision + 1,
                anchor_ref=e.anchor_ref, last_ref=e.last_ref,
                evidence={"technical": True, "cleared": True},
            )
        )  # fmt: skip
    return changes


def announcements(changes: Sequence[Change], now: datetime) -> list[AlertEvent]:
    """`gateway.offline` for every hub finding opened by `changes` (same alert id), for care
    teams that subscribe to that event type rather than to every `alert.opened`."""
    return [
        AlertEvent(
            event_id=event_id_for(EventType.GATEWAY_OFFLINE, ch.alert_id, 1),
            type=EventType.GATEWAY_OFFLINE, occurred_at=now, patient_id=ch.patient_id,
            alert_id=ch.alert_id, rule_id=ch.rule_id, priority=ch.priority, revision=1,
        )
        for ch in changes
        if ch.rule_id == HUB_OFFLINE and ch.type is EventType.ALERT_OPENED
    ]  # fmt: skip
