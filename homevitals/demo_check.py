"""The demo's self-check, from what the run left in its directory (adapter: files, the record
store, the hubs' databases, `homevitals audit verify`).

It passes only when
1. every record a simulated device produced is stored, or quarantined with a reason, or still on
   the device with a reason (`homevitals.demo_ledger`), each counted;
2. every alert the patients' scenarios declare arrived at the hospital clinic as a verified
   `alert.opened` webhook (the receiver prints only what it verified);
3. `homevitals audit verify` passes on the record store (with the anchor the run exported, so
   a cut tail shows too).

The evidence is kept in the demo directory, so that `homevitals demo --check-only --dir DIR`
judges a finished run again: `story.json` (patients, their hubs, the declared alerts),
`devices.json` (every record the devices held at the end, with the reading id the hub must give
it and the bytes it sends), `webhooks.jsonl` (the receiver's lines), `audit-anchor.json`, the
hubs' own databases and the record store.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gateway.outbox import Outbox
from gateway.registry import Registry
from homevitals.demo_errors import DemoError
from homevitals.demo_ledger import (
    DeviceRecord,
    Entry,
    Evidence,
    Fate,
    HubDevice,
    Packet,
    Tally,
    account,
    tally,
)
from homevitals.demo_procs import child_env, python_argv
from homevitals.demo_report import Webhook, parse_webhook_line
from ingest import schema
from ingest.mirror import cursor_position
from ingest.store import make_engine

STORY_FILE = "story.json"
DEVICES_FILE = "devices.json"
WEBHOOKS_FILE = "webhooks.jsonl"
ANCHOR_FILE = "audit-anchor.json"
HUB_DB = "gateway.sqlite"
AUDIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StoryPatient:
    """A patient of the run, their hub and what their scenario declares."""

    patient_id: str
    display_name: str
    gateway_id: str
    hub_dir: str  # relative to the demo directory
    expected: dict[str, int]


def write_story(directory: Path, patients: Sequence[StoryPatient]) -> None:
    """Write `story.json`."""
    doc = {"patients": [vars(p) for p in patients]}
    (directory / STORY_FILE).write_text(json.dumps(doc, indent=2) + "\n")


def write_devices(directory: Path, records: Mapping[str, Sequence[DeviceRecord]]) -> None:
    """Write `devices.json`: per patient, every record their devices hold."""
    doc = {
        patient: [
            {
                "device_id": r.device_id,
                "label": r.label,
                "reading_id": r.reading_id,
                "sequence": r.sequence,
                "raw_hex": r.raw.hex(),
                "sent": r.sent,
            }
            for r in recs
        ]
        for patient, recs in records.items()
    }
    (directory / DEVICES_FILE).write_text(json.dumps(doc, indent=1) + "\n")


def _load(directory: Path, name: str) -> object:
    path = directory / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoError(f"{path} is missing: not a finished demo directory") from None
    except ValueError as exc:
        raise DemoError(f"{path} is not JSON: {exc}") from exc


def load_story(directory: Path) -> list[StoryPatient]:
    """The patients of a run (`story.json`).

    Raises:
        DemoError: missing or malformed.
    """
    doc = _load(directory, STORY_FILE)
    try:
        return [StoryPatient(**p) for p in doc["patients"]]  # type: ignore[index]
    except (TypeError, KeyError) as exc:
        raise DemoError(f"{directory / STORY_FILE}: {exc}") from exc


def load_devices(directory: Path) -> dict[str, list[DeviceRecord]]:
    """The devices' records per patient (`devices.json`).

    Raises:
        DemoError: missing or malformed.
    """
    doc = _load(directory, DEVICES_FILE)
    try:
        return {
            patient: [
                DeviceRecord(
                    r["device_id"],
                    r["label"],
                    r["reading_id"],
                    r["sequence"],
                    bytes.fromhex(r["raw_hex"]),
                    r["sent"],
                )
                for r in recs
            ]
            for patient, recs in doc.items()  # type: ignore[attr-defined]
        }
    except (TypeError, KeyError, ValueError) as exc:
        raise DemoError(f"{directory / DEVICES_FILE}: {exc}") from exc


def load_webhooks(directory: Path) -> list[Webhook]:
    """The verified webhooks the receiver printed (`webhooks.jsonl`; none when absent)."""
    path = directory / WEBHOOKS_FILE
    if not path.exists():
        return []
    hooks = (parse_webhook_line(line) for line in path.read_text().splitlines())
    return [h for h in hooks if h is not None]


# ------------------------------------------------------------------------------- evidence


def _store_evidence(engine: sa.Engine) -> tuple[frozenset[str], dict[str, str], list[Packet]]:
    q = schema.quarantine.c
    with engine.connect() as conn:
        stored = frozenset(conn.execute(sa.select(schema.readings.c.reading_id)).scalars())
        rows = conn.execute(sa.select(q.reading_id, q.field, q.reason, q.payload)).all()
    quarantined: dict[str, str] = {}
    packets: list[Packet] = []
    for reading_id, field_name, reason, payload in rows:
        if reading_id:
            quarantined[str(reading_id)] = f"{field_name}: {reason}"
        elif str(field_name).startswith("hub:"):
            try:
                doc = json.loads(payload)
                packets.append(Packet(doc["device_id"], bytes.fromhex(doc["raw_hex"]), reason))
            except (ValueError, KeyError, TypeError):
                continue  # not a forwarded packet of ours: it accounts for nothing
    return stored, quarantined, packets


def _hub_evidence(
    path: Path, device_ids: Iterable[str]
) -> tuple[set[str], list[Packet], dict[str, HubDevice]]:
    on_hub: set[str] = set()
    packets: list[Packet] = []
    devices: dict[str, HubDevice] = {}
    if not path.exists():
        return on_hub, packets, devices
    outbox, registry = Outbox(path), Registry(path)
    try:
        outcomes = {p.device_id: p.last_outcome for p in registry.all()}
        for device_id in set(device_ids):
            on_hub |= {
                rid for rid in outbox.reading_ids(device_id) if outbox.state_of(rid) == "pending"
            }
            packets += [
                Packet(device_id, p.raw, f"kept on the hub: {p.reason}")
                for p in outbox.quarantined(device_id)
            ]
            cursor = outbox.cursor(device_id)
            devices[device_id] = HubDevice(
                None if cursor is None else cursor.last_sequence, outcomes.get(device_id)
            )
    finally:
        registry.close()
        outbox.close()
    return on_hub, packets, devices


def gather(
    db_url: str,
    directory: Path,
    devices: Mapping[str, Sequence[DeviceRecord]],
    patients: Sequence[StoryPatient],
) -> tuple[Evidence, int, int]:
    """The ledger's evidence (record store, and each patient's hub for that patient's
    devices), and how many readings are stored and mirrored (the time-series cursor).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read.
    """
    engine = make_engine(db_url)
    try:
        stored, quarantined, packets = _store_evidence(engine)
        mirror_at = cursor_position(engine, "tsdb")
        r = schema.readings.c
        with engine.connect() as conn:
            mirrored = int(
                conn.execute(sa.select(sa.func.count()).where(r.id <= mirror_at)).scalar_one()
            )
    finally:
        engine.dispose()
    on_hub: set[str] = set()
    hubs: dict[str, HubDevice] = {}
    for patient in patients:
        ids = {r.device_id for r in devices.get(patient.patient_id, ())}
        pending, hub_packets, known = _hub_evidence(directory / patient.hub_dir / HUB_DB, ids)
        on_hub |= pending
        packets += hub_packets
        hubs.update(known)
    evidence = Evidence(stored, quarantined, packets, frozenset(on_hub), hubs)
    return evidence, len(stored), mirrored


def audit_verify(db_url: str, anchor: Path | None) -> tuple[bool, str]:
    """Run `homevitals audit verify` (with the anchor when there is one); ok and its words."""
    argv = python_argv("-m", "homevitals", "audit", "verify")
    if anchor is not None and anchor.exists():
        argv += ["--anchor", str(anchor)]
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter and module)
            argv,
            env=child_env({"HV_CARETEAM_DB_URL": db_url}),
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"could not run: {exc}"
    words = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, words[-1] if words else f"exit {done.returncode}"


def audit_anchor(db_url: str, anchor: Path) -> None:
    """Export the audit chain's head (`homevitals audit anchor`) to `anchor`.

    Raises:
        DemoError: the command failed.
    """
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        python_argv("-m", "homevitals", "audit", "anchor"),
        env=child_env({"HV_CARETEAM_DB_URL": db_url}),
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"homevitals audit anchor failed: {done.stderr.strip()[-500:]}")
    anchor.write_text(done.stdout)


# ------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class AlertCheck:
    """One declared alert of one patient: how many verified `alert.opened` arrived."""

    patient: str
    rule_id: str
    need: int
    have: int


@dataclass(frozen=True)
class CheckResult:
    """The self-check's verdict and everything it counted."""

    entries: list[Entry]
    tally: Tally
    alerts: list[AlertCheck]
    undeclared: dict[str, int]  # "patient rule" -> alert.opened webhooks nobody declared
    audit_ok: bool
    audit_words: str
    stored: int
    mirrored: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Readings accounted for, declared alerts received, audit chain intact."""
        return self.tally.ok and all(a.have >= a.need for a in self.alerts) and self.audit_ok

    def lines(self) -> list[str]:
        """The self-check as the demo prints it."""
        t = self.tally
        dupes = t.count(Fate.DUPLICATE)
        out = [
            "self-check",
            f"  readings produced by the devices: {t.produced}",
            f"    stored:                  {t.count(Fate.STORED) + dupes}"
            + (f" ({dupes} of them copies a device kept twice, stored once)" if dupes else ""),
            f"    quarantined, with why:   {t.count(Fate.QUARANTINED)}",
            f"    still on the device:     {t.count(Fate.ON_DEVICE)}",
            f"    on a hub, unconfirmed:   {t.count(Fate.ON_HUB)}",
            f"    unaccounted:             {t.count(Fate.UNACCOUNTED)}",
        ]
        for (fate, reason), n in sorted(t.reasons.items()):
            if fate in (Fate.QUARANTINED, Fate.ON_DEVICE):
                out.append(f"      {n} {fate.value}: {reason}")
        for entry in self.entries:
            if entry.fate in (Fate.UNACCOUNTED, Fate.ON_HUB):
                r = entry.record
                seq = "" if r.sequence is None else f" sequence {r.sequence}"
                out.append(
                    f"      {entry.fate.value.upper()}: {r.label}{seq}, reading {r.reading_id}"
                )
        out.append(f"  time-series mirror: {self.mirrored} of {self.stored} stored readings")
        for a in self.alerts:
            mark = "ok" if a.have >= a.need else "MISSING"
            out.append(f"  alert {a.rule_id} for {a.patient}: {a.have}/{a.need} verified  {mark}")
        for key, n in sorted(self.undeclared.items()):
            out.append(f"  also received: {n} alert.opened {key} (not declared by the scenario)")
        out.append(f"  audit trail: {'intact' if self.audit_ok else 'FAILED'} ({self.audit_words})")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def failures(self) -> list[str]:
        """What made the check fail, in short."""
        out = []
        t = self.tally
        for fate in (Fate.UNACCOUNTED, Fate.ON_HUB):
            if t.count(fate):
                out.append(f"{t.count(fate)} readings {fate.value}")
        out += [
            f"{a.rule_id} for {a.patient}: {a.have} of {a.need} alert.opened webhooks"
            for a in self.alerts
            if a.have < a.need
        ]
        if not self.audit_ok:
            out.append(f"audit trail: {self.audit_words}")
        return out


def judge_alerts(
    patients: Sequence[StoryPatient], webhooks: Iterable[Webhook]
) -> tuple[list[AlertCheck], dict[str, int]]:
    """Declared alerts against the verified `alert.opened` webhooks (distinct alerts)."""
    got: dict[tuple[str, str], set[str]] = {}
    for hook in webhooks:
        if hook.type == "alert.opened" and hook.rule_id and hook.alert_id and hook.patient_id:
            got.setdefault((hook.patient_id, hook.rule_id), set()).add(hook.alert_id)
    checks = [
        AlertCheck(p.display_name, rule, need, len(got.get((p.patient_id, rule), ())))
        for p in patients
        for rule, need in p.expected.items()
    ]
    names = {p.patient_id: p.display_name for p in patients}
    declared = {(p.patient_id, rule) for p in patients for rule in p.expected}
    undeclared = {
        f"{rule} for {names.get(pid, pid)}": len(ids)
        for (pid, rule), ids in got.items()
        if (pid, rule) not in declared
    }
    return checks, undeclared


def check_directory(directory: Path, db_url: str) -> CheckResult:
    """Judge a demo run from its directory (see the module docstring).

    Raises:
        DemoError: the directory lacks the run's evidence.
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read.
    """
    patients = load_story(directory)
    devices = load_devices(directory)
    records = [r for p in patients for r in devices.get(p.patient_id, [])]
    evidence, stored, mirrored = gather(db_url, directory, devices, patients)
    entries = account(records, evidence)
    alerts, undeclared = judge_alerts(patients, load_webhooks(directory))
    audit_ok, words = audit_verify(db_url, directory / ANCHOR_FILE)
    return CheckResult(
        entries, tally(entries), alerts, undeclared, audit_ok, words, stored, mirrored
    )
