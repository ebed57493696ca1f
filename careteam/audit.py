"""The audit trail's hash chain and its FHIR AuditEvent view (pure: no I/O, no clock).

Each entry carries the hash of the one before it; its own hash is SHA-256 over a canonical JSON
of every stored field (position `seq` and `prev_hash` included). So editing an entry changes its
hash, deleting or inserting one breaks the next entry's `prev_hash` or the run of positions,
and reordering breaks both. Cutting off the tail leaves a valid shorter chain: an *anchor*
(the head's position and hash, exported and kept outside the database) makes that detectable.
Someone who can rewrite the whole table can recompute every hash after the last anchor, which
is why anchors go somewhere the database's writers cannot reach.

Entries map to FHIR R4 AuditEvent after the IHE Basic Audit Log Patterns (`to_fhir`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from careteam.errors import InvalidFieldError

GENESIS: Final = "0" * 64

ACTOR_KINDS: Final = ("member", "team", "institution", "patient", "gateway", "system", "operator")
OUTCOMES: Final = ("success", "denied", "failure")

# action -> (FHIR AuditEvent.action, words for the patient's own view: en, zh)
ACTIONS: Final[dict[str, tuple[str, str, str]]] = {
    "data.read": ("R", "read your {data}", "查看了您的{data}"),
    "disclosure.webhook": ("E", "was sent an alert about you", "收到了关于您的警报"),
    "alert.acknowledge": ("U", "acknowledged an alert about you", "确认了关于您的警报"),
    "alert.resolve": ("U", "closed an alert about you as handled", "处理完毕了关于您的警报"),
    "consent.grant": ("C", "recorded your consent", "记录了您的授权"),
    "consent.withdraw": ("U", "recorded the withdrawal of your consent", "记录了您撤回授权"),
    "patient.register": ("C", "registered you", "为您建档"),
    "patient.update": ("U", "updated your record", "更新了您的档案"),
    "enrolment_code.create": ("C", "made a hub enrolment code for you", "为您生成了网关注册码"),
    "gateway.enrol": ("C", "enrolled your home hub", "注册了您的家庭网关"),
    "gateway.enrol_refused": ("E", "refused a hub enrolment", "拒绝了一次网关注册"),
    "gateway.revoke": ("D", "unenrolled your home hub", "注销了您的家庭网关"),
    "device.pair": ("C", "paired a device to you", "为您配对了设备"),
    "device.unpair": ("D", "unpaired a device from you", "为您解除了设备配对"),
    "delivery.cancel": ("U", "cancelled alerts not yet sent", "取消了尚未发送的警报"),
    # An operator's allow-list (HV_DELIVERY_ALLOW_CIDRS) admitted a receiver on a private network.
    "webhook.private_target": (
        "E",
        "used an alert receiver on a private network",
        "使用了内网警报接收端",
    ),
    "audit.view": ("R", "looked at this audit trail", "查看了本审计记录"),
}

_FIELDS: Final = (
    "seq",
    "recorded_at",
    "actor_kind",
    "actor_id",
    "action",
    "patient_id",
    "entity_kind",
    "entity_id",
    "data_kind",
    "outcome",
    "source",
    "purpose",
    "detail",
    "prev_hash",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, for the audit trail: kind (`ACTOR_KINDS`), id, and where from (an address,
    ``"cli"``), plus the token id or purpose of use when there is one."""

    kind: str
    id: str
    source: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What a caller asks to be recorded (`careteam.audit_store.append` chains it).

    `source` is where the request came from (an IP address, ``"cli"``, ``"mqtt"``); `purpose`
    the token id or the purpose of use; `detail` extra facts (ids, counts: never readings).
    """

    actor_kind: str
    actor_id: str
    action: str
    outcome: str = "success"
    patient_id: str | None = None
    entity_kind: str | None = None
    entity_id: str | None = None
    data_kind: str | None = None
    source: str | None = None
    purpose: str | None = None
    detail: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored, chained entry."""

    seq: int
    recorded_at: datetime
    actor_kind: str
    actor_id: str
    action: str
    patient_id: str | None
    entity_kind: str | None
    entity_id: str | None
    data_kind: str | None
    outcome: str
    source: str | None
    purpose: str | None
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the chain at some moment, kept outside the database."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain check: ok, or the first bad position and what is wrong there."""

    ok: bool
    entries: int
    head: Anchor | None
    first_bad_seq: int | None = None
    problem: str | None = None


def check_record(record: AuditRecord) -> None:
    """Refuse a record with an unknown actor kind, action or outcome.

    Raises:
        InvalidFieldError: naming ``"actor_kind"``, ``"action"``, ``"outcome"`` or ``"actor_id"``.
    """
    if record.actor_kind not in ACTOR_KINDS:
        raise InvalidFieldError("actor_kind", f"must be one of {', '.join(ACTOR_KINDS)}")
    if record.action not in ACTIONS:
        raise InvalidFieldError("action", f"{record.action!r} is not a known audit action")
    if record.outcome not in OUTCOMES:
        raise InvalidFieldError("outcome", f"must be one of {', '.join(OUTCOMES)}")
    if not record.actor_id or len(record.actor_id) > 64:
        raise InvalidFieldError("actor_id", "must be 1 to 64 characters")


def canonical_detail(detail: Mapping[str, object] | None) -> str:
    """The stored text of `detail`: compact JSON with sorted keys (hashed as stored)."""
    return json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"), default=str)


def _time_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(fields: Mapping[str, object]) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's stored fields (`hash` excluded)."""
    doc = {name: fields[name] for name in _FIELDS}
    at = doc["recorded_at"]
    if isinstance(at, datetime):
        doc["recorded_at"] = _time_text(at)
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def chain(record: AuditRecord, *, seq: int, prev_hash: str, at: datetime) -> AuditEntry:
    """Make the entry that follows (`seq` - 1, `prev_hash`) in the chain.

    Raises:
        InvalidFieldError: see `check_record`; a naive `at`.
    """
    check_record(record)
    if at.tzinfo is None:
        raise InvalidFieldError("recorded_at", "must be an aware datetime")
    # The database keeps microseconds: hash what is stored.
    fields: dict[str, object] = {
        "seq": seq,
        "recorded_at": at.astimezone(UTC),
        "actor_kind": record.actor_kind,
        "actor_id": record.actor_id,
        "action": record.action,
        "patient_id": record.patient_id,
        "entity_kind": record.entity_kind,
        "entity_id": record.entity_id,
        "data_kind": record.data_kind,
        "outcome": record.outcome,
        "source": record.source,
        "purpose": record.purpose,
        "detail": canonical_detail(record.detail),
        "prev_hash": prev_hash,
    }
    return AuditEntry(hash=entry_hash(fields), **fields)  # type: ignore[arg-type]


def verify_chain(entries: Iterable[AuditEntry], anchor: Anchor | None = None) -> VerifyResult:
    """Check entries given in `seq` order from the first; stops at the first bad one.

    With an `anchor`, also checks that the chain still reaches it with the same hash there
    (a cut-off tail, or a chain rewritten before the anchor, fails).
    """
    prev = GENESIS
    expected = 1
    count = 0
    anchor_seen = False
    for entry in entries:
        if entry.seq != expected:
            what = "missing or reordered" if entry.seq > expected else "out of order"
            return VerifyResult(
                False, count, None, expected, f"entry {expected} is {what} (found {entry.seq})"
            )
        if entry.prev_hash != prev:
            return VerifyResult(
                False,
                count,
                None,
                entry.seq,
                f"entry {entry.seq} does not follow entry {entry.seq - 1} (inserted, deleted "
                "or reordered)",
            )
        fields = {name: getattr(entry, name) for name in _FIELDS}
        if entry_hash(fields) != entry.hash:
            return VerifyResult(
                False, count, None, entry.seq, f"entry {entry.seq} was changed after it was written"
            )
        if anchor is not None and entry.seq == anchor.seq:
            anchor_seen = True
            if entry.hash != anchor.hash:
                return VerifyResult(
                    False, count, None, entry.seq, f"entry {entry.seq} differs from the anchor"
                )
        prev = entry.hash
        expected += 1
        count += 1
    head = Anchor(expected - 1, prev) if count else None
    if anchor is not None and not anchor_seen and anchor.seq > 0:
        return VerifyResult(
            False,
            count,
            head,
            count + 1,
            f"the chain ends at entry {count}, before the anchor's entry {anchor.seq} "
            "(entries were cut off)",
        )
    return VerifyResult(True, count, head)


def describe(entry: AuditEntry, language: str, actor_name: str) -> str:
    """One line of the patient's own view: who did what, in their language (en or zh)."""
    _, en, zh = ACTIONS.get(entry.action, ("", entry.action, entry.action))
    data = entry.data_kind or ("data" if language == "en" else "数据")
    if language == "zh":
        names = {
            "glucose": "血糖数据",
            "blood_pressure": "血压数据",
            "alerts": "警报",
            "devices": "设备信息",
        }
        phrase = zh.format(data=names.get(entry.data_kind or "", data))
        refused = "（被拒绝）" if entry.outcome == "denied" else ""
        return f"{actor_name}{phrase}{refused}"
    names_en = {"blood_pressure": "blood pressure readings", "glucose": "glucose readings"}
    phrase = en.format(data=names_en.get(entry.data_kind or "", data))
    refused = " (refused)" if entry.outcome == "denied" else ""
    return f"{actor_name} {phrase}{refused}"


_FHIR_OUTCOME: Final = {"success": "0", "denied": "4", "failure": "8"}


def to_fhir(entry: AuditEntry) -> dict[str, object]:
    """The entry as a FHIR R4 AuditEvent resource (IHE Basic Audit Log Patterns shape)."""
    action = ACTIONS.get(entry.action, ("E", "", ""))[0]
    resource: dict[str, object] = {
        "resourceType": "AuditEvent",
        "id": str(entry.seq),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "urn:homevitals:audit-action", "code": entry.action}],
        "action": action,
        "recorded": _time_text(entry.recorded_at),
        "outcome": _FHIR_OUTCOME[entry.outcome],
        "agent": [
            {
                "who": {
                    "identifier": {
                        "system": f"urn:homevitals:{entry.actor_kind}",
                        "value": entry.actor_id,
                    }
                },
                "requestor": entry.actor_kind != "system",
                **({"network": {"address": entry.source, "type": "2"}} if entry.source else {}),
                **({"purposeOfUse": [{"text": entry.purpose}]} if entry.purpose else {}),
            }
        ],
        "source": {"observer": {"display": "homevitals"}},
    }
    entities: list[dict[str, object]] = []
    if entry.patient_id is not None:
        entities.append(
            {
                "what": {"reference": f"Patient/{entry.patient_id}"},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if entry.entity_kind is not None and entry.entity_id is not None:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": f"urn:homevitals:{entry.entity_kind}",
                        "value": entry.entity_id,
                    }
                },
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
            }
        )
    if entities:
        resource["entity"] = entities
    return resource
