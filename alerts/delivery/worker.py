"""The delivery worker: claims due deliveries, signs, POSTs, records, retries, disables.

At-least-once: a delivery is leased (not locked across the HTTP call), sent, and only then
marked delivered in a new transaction. A worker that dies mid-send leaves the lease to expire and
another pass sends it again with the same `webhook-id` (the event id) and a new timestamp, so the
receiver can deduplicate (Standard Webhooks: `webhook-id` is the idempotency key). Every attempt is
recorded with its outcome, HTTP status and latency. `410 Gone` disables the endpoint; so does a
delivery that exhausts the retry schedule (about a day); either raises the technical alarm
`delivery.failing` to the team's other enabled endpoints (IEC 60601-1-8 technical alarm condition;
technical alarms ignore event filters: they cannot be unsubscribed).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from alerts.delivery import (
    alarms,
    confirmation,
    consent_gate,
    endpoints,
    guard,
    payload,
    sender,
    signing,
)
from alerts.delivery.errors import InvalidFieldError
from alerts.delivery.escalation import EscalationPolicy
from alerts.delivery.schedule import RETRY_AFTER_STATUSES, RetrySchedule, parse_retry_after
from alerts.delivery.ssrf import Approved, SsrfPolicy, Target
from alerts.delivery.tables import (
    CANCELLED,
    DELIVERED,
    FAILED,
    PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
)
from alerts.events import EventType, Priority
from careteam import audit_store
from careteam.audit import AuditRecord
from careteam.consent import Decision
from careteam.errors import SecretsError
from careteam.secrets import SecretBox
from careteam.tables import webhook_endpoints
from ingest.notify import Waker

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How the worker delivers. `lease_s` must exceed `timeout_s`."""

    links: payload.LinkConfig
    # Opens the sealed signing secrets (HV_SECRETS_KEYS).
    secrets: SecretBox
    policy: SsrfPolicy = field(default_factory=SsrfPolicy)
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    timeout_s: float = 15.0
    lease_s: float = 60.0
    batch_size: int = 20
    # Endpoints served at once (threads); deliveries to one endpoint stay sequential.
    concurrency: int = 8
    # An endpoint failing this long raises `delivery.failing` (once per failing streak), long
    # before the retry schedule runs out and disables it.
    failing_alarm_after: timedelta = timedelta(minutes=15)


class DeliveryWorker:
    """Delivers pending webhook deliveries; `run_once` is one pass, `run` loops until stopped.

    `after_response(delivery_id)` is called after the HTTP exchange and before its result is
    recorded (the crash window a failpoint targets in tests).
    """

    def __init__(
        self,
        engine: sa.Engine,
        config: WorkerConfig,
        clock: Clock,
        rng: random.Random,
        *,
        resolver: guard.Resolver = guard.system_resolver,
        client: httpx.Client | None = None,
        after_response: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.rng = rng
        self.resolver = resolver
        self.client = client or sender.new_client(config.timeout_s)
        self.after_response = after_response
        self._pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        """Stop the sending threads and close the HTTP client."""
        self._pool.shutdown(wait=True)
        self.client.close()

    def run(
        self,
        stop: threading.Event,
        idle_s: float = 0.5,
        *,
        waker: Waker | None = None,
        fallback_s: float = 5.0,
    ) -> None:
        """Deliver and escalate until `stop` is set; when idle, wait for the next pass.

        Without a listening `waker` (SQLite) an idle loop sleeps `idle_s`. With a LISTEN `waker`
        (PostgreSQL, `DELIVERIES_CHANNEL`) it waits until a delivery becomes pending (the
        engine's transaction committed), the next retry or expired lease falls due, or
        `fallback_s` passes, whichever is first; whoever sets `stop` must then call
        `waker.interrupt()`.

        A database outage does not end the loop: it is logged once when it starts, the loop
        waits `idle_s` and tries again, and recovery is logged (nothing is lost: the outbox
        is in the database, and leases of rows claimed before the outage expire).
        """
        database_down = False
        sealed = False
        while not stop.is_set():
            wait_s = idle_s
            try:
                if not sealed:  # first pass: secrets an older version left in clear
                    self.seal_secrets()
                    sealed = True
                busy = self.run_once()
                self.escalate()
                if not busy and waker is not None and waker.listening:
                    wait_s = self._until_next_due(fallback_s)
            except sa.exc.DBAPIError as exc:
                if not database_down:
                    log.error("record store unavailable, retrying: %s", type(exc.orig).__name__)
                database_down, busy, wait_s = True, 0, idle_s
            else:
                if database_down:
                    log.info("record store available again")
                database_down = False
            if busy:
                continue
            if waker is None or database_down:
                stop.wait(wait_s)
            else:
                waker.wait(wait_s)

    def _until_next_due(self, longest_s: float) -> float:
        """Seconds until the earliest pending delivery falls due (its next attempt, or the
        expiry of another worker's lease), at most `longest_s`."""
        d = webhook_deliveries.c
        with self.engine.connect() as conn:
            later = sa.case(
                (d.lease_until > d.next_attempt_at, d.lease_until), else_=d.next_attempt_at
            )
            due: datetime | None = conn.execute(
                sa.select(sa.func.min(later)).where(d.status == PENDING)
            ).scalar()
        if due is None:
            return longest_s
        if due.tzinfo is None:  # SQLite returns naive datetimes; the store holds UTC only
            due = due.replace(tzinfo=UTC)
        seconds = (due - self.clock()).total_seconds()
        return min(longest_s, max(0.0, seconds) + 0.001)

    def seal_secrets(self) -> int:
        """Seal signing secrets stored in clear or under an older key; returns how many."""
        with self.engine.begin() as conn:
            changed = endpoints.seal_stored_secrets(conn, self.config.secrets)
        if changed:
            log.info("sealed %d webhook signing secrets (in clear or under an old key)", changed)
        return changed

    def escalate(self) -> int:
        """One escalation pass; returns how many alerts escalated."""
        with self.engine.begin() as conn:
            return len(confirmation.escalate_due(conn, self.clock(), self.config.escalation))

    def run_once(self) -> int:
        """Claim and attempt the deliveries due now; returns how many were attempted."""
        now = self.clock()
        claim_lease = now + timedelta(seconds=self.config.lease_s)
        ids = self._claim(now, claim_lease)
        if not ids:
            return 0
        rows, secrets = self._load(ids, now)
        by_endpoint: dict[str, list[sa.Row[Any]]] = {}
        for row in rows:
            by_endpoint.setdefault(row.endpoint_id, []).append(row)
        # Endpoints are served concurrently, each endpoint's deliveries in order: a receiver
        # that hangs until the timeout delays only its own queue, not other teams' alerts.
        queues = list(by_endpoint.values())
        counts = self._pool.map(lambda q: self._send_queue(q, claim_lease, secrets), queues)
        return sum(counts)

    def _send_queue(
        self, rows: list[sa.Row[Any]], claim_lease: datetime, secrets: dict[str, list[str]]
    ) -> int:
        attempted = 0
        for row in rows:
            # Sending one by one can outlast the batch's lease: re-take the row just before the
            # send, and only if nobody else claimed it since (its lease is still ours). A row
            # cancelled meanwhile (its endpoint was disabled by a 410) is skipped the same way.
            if self._renew(row.id, claim_lease):
                self._attempt(row, secrets.get(row.endpoint_id, []))
                attempted += 1
        return attempted

    def _claim(self, now: datetime, lease: datetime) -> list[int]:
        d = webhook_deliveries.c
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(d.id)
                    .where(
                        d.status == PENDING,
                        d.next_attempt_at <= now,
                        sa.or_(d.lease_until.is_(None), d.lease_until < now),
                    )
                    .order_by(d.next_attempt_at, d.id)
                    .limit(self.config.batch_size)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if ids:
                conn.execute(
                    sa.update(webhook_deliveries).where(d.id.in_(ids)).values(lease_until=lease)
                )
        return ids

    def _load(
        self, ids: list[int], now: datetime
    ) -> tuple[list[sa.Row[Any]], dict[str, list[str]]]:
        d, e, w = webhook_deliveries.c, webhook_events.c, webhook_endpoints.c
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(webhook_deliveries, webhook_events, w.url, w.team_id, w.enabled)
                    .join(webhook_events, e.event_id == d.event_id)
                    .join(webhook_endpoints, w.id == d.endpoint_id)
                    .where(d.id.in_(ids))
                    .order_by(d.next_attempt_at, d.id)
                )
            )
            secrets: dict[str, list[str]] = {}
            for endpoint_id in {r.endpoint_id for r in rows}:
                try:
                    secrets.update(
                        endpoints.active_secrets(conn, [endpoint_id], now, box=self.config.secrets)
                    )
                except SecretsError as exc:  # its deliveries are refused: no secret to sign
                    log.error("endpoint %s: signing secret unusable: %s", endpoint_id, exc)
        return rows, secrets

    def _renew(self, delivery_id: int, claim_lease: datetime) -> bool:
        d = webhook_deliveries.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(webhook_deliveries)
                .where(d.id == delivery_id, d.status == PENDING, d.lease_until == claim_lease)
                .values(lease_until=self.clock() + timedelta(seconds=self.config.lease_s))
            )
        return taken.rowcount == 1

    def _attempt(self, row: sa.Row[Any], secrets: list[str]) -> None:
        delivery_id = row.id
        started = self.clock()
        if not row.enabled:
            self._finish(delivery_id, CANCELLED, "endpoint disabled")
            return
        disclosure: AuditRecord | None = None
        if row.patient_id is not None:
            verdict = self._consent_or_cancel(row, started)
            if not verdict.permit:
                return
            disclosure = AuditRecord(
                actor_kind="system",
                actor_id="delivery",
                action="disclosure.webhook",
                patient_id=row.patient_id,
                entity_kind="webhook_endpoint",
                entity_id=row.endpoint_id,
                data_kind=consent_gate.ALERTS,
                source="delivery",
                purpose=verdict.consent_id,
                detail={
                    "team_id": row.team_id,
                    "event_id": row.event_id,
                    "type": row.type,
                    "alert_id": row.alert_id,
                    "consent_id": verdict.consent_id,
                },
            )
        event = payload.StoredEvent(
            event_id=row.event_id,
            type=EventType(row.type),
            occurred_at=row.occurred_at,
            patient_id=row.patient_id,
            alert_id=row.alert_id,
            rule_id=row.rule_id,
            priority=Priority(row.priority) if row.priority else None,
            revision=row.revision,
            subject_id=row.subject_id,
            tier=row.tier,
            page_members=_page_members(row.page_members),
        )
        body = payload.render(event, row.team_id, self.config.links)
        try:
            target, approved = guard.resolve(row.url, self.config.policy, self.resolver)
            headers = signing.sign_headers(row.event_id, started, body, secrets)
        except InvalidFieldError as exc:  # SSRF refusal (UnsafeUrlError) or no active secret
            result = sender.AttemptResult(sender.REFUSED, 0.0, error=str(exc))
            private = None
        else:
            private = (target, approved) if approved.allowed_by is not None else None
            result = sender.post(
                self.client,
                row.url,
                target,
                approved.address,
                body=body,
                headers=headers,
                timeout_s=self.config.timeout_s,
            )
        if self.after_response is not None:
            self.after_response(delivery_id)
        self._record(
            delivery_id,
            row.endpoint_id,
            row.team_id,
            attempt_number=row.attempts + 1,
            started=started,
            result=result,
            host=_host(row.url),
            private=private,
            disclosure=disclosure,
        )

    def _consent_or_cancel(self, row: sa.Row[Any], at: datetime) -> Decision:
        """The team's ``alerts`` consent now; without one the delivery is cancelled (audited)."""
        with self.engine.begin() as conn:
            verdict = consent_gate.decisions(conn, row.patient_id, [row.team_id], at)[row.team_id]
            if not verdict.permit:
                reason = f"consent: {verdict.reason}"
                conn.execute(
                    sa.update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.id == row.id, webhook_deliveries.c.status == PENDING
                    )
                    .values(status=CANCELLED, last_error=reason, lease_until=None)
                )
                consent_gate.audit_cancelled(
                    conn, row.patient_id, row.team_id, count=1, reason=reason, at=at
                )
                log.info("delivery %d cancelled: %s", row.id, reason)
        return verdict

    def _finish(self, delivery_id: int, status: str, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(status=status, last_error=error, lease_until=None)
            )

    def _record(
        self,
        delivery_id: int,
        endpoint_id: str,
        team_id: str,
        *,
        attempt_number: int,
        started: datetime,
        result: sender.AttemptResult,
        host: str,
        private: tuple[Target, Approved] | None = None,
        disclosure: AuditRecord | None = None,
    ) -> None:
        ended = self.clock()
        retry_after_s = None
        if result.status_code in RETRY_AFTER_STATUSES:
            retry_after_s = parse_retry_after(result.retry_after, ended)
        values: dict[str, object] = {
            "attempts": attempt_number,
            "lease_until": None,
            "last_status_code": result.status_code,
            "last_error": result.error,
        }
        disable_reason = None
        if result.outcome == sender.SUCCESS:
            values.update(status=DELIVERED, delivered_at=ended)
        elif result.outcome == sender.GONE:
            values["status"] = FAILED
            disable_reason = "the receiver answered 410 Gone"
        else:
            jitter = self.rng.random()
            next_at = self.config.schedule.next_attempt_at(
                attempt_number, ended, jitter, retry_after_s
            )
            if next_at is None:
                values["status"] = FAILED
                disable_reason = f"delivery failed {attempt_number} times over the retry schedule"
            else:
                values["next_attempt_at"] = next_at
        w = webhook_endpoints.c
        with self.engine.begin() as conn:
            if private is not None:  # an allow-listed private receiver: audited with the attempt
                guard.audit_allowed(conn, endpoint_id, *private, action="delivery", at=started)
            conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=delivery_id,
                    endpoint_id=endpoint_id,
                    attempt_number=attempt_number,
                    started_at=started,
                    latency_ms=result.latency_ms,
                    status_code=result.status_code,
                    outcome=result.outcome,
                    error=result.error,
                    retry_after_s=retry_after_s,
                )
            )
            conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )
            endpoint = sa.update(webhook_endpoints).where(w.id == endpoint_id)
            if result.outcome == sender.SUCCESS:
                conn.execute(endpoint.values(failing_since=None))
                if disclosure is not None:
                    audit_store.append(conn, disclosure, ended)
            else:
                failing_since = conn.execute(
                    endpoint.values(
                        failing_since=sa.func.coalesce(w.failing_since, started)
                    ).returning(w.failing_since)
                ).scalar_one()
                alarm_due = ended - failing_since >= self.config.failing_alarm_after
                if disable_reason is None and alarm_due:
                    alarms.raise_failing_once(conn, endpoint_id, team_id, ended, failing_since)
                log.info(
                    "endpoint %s host %s delivery %d attempt %d: %s",
                    endpoint_id,
                    host,
                    delivery_id,
                    attempt_number,
                    _summary(result),
                )
            if disable_reason is not None:
                alarms.disable_and_alarm(conn, endpoint_id, team_id, ended, disable_reason)


def _host(url: str) -> str:
    """The host of a stored URL, for logs (never the URL: its path may carry a token)."""
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "?"


def _summary(result: sender.AttemptResult) -> str:
    """An attempt's outcome for the log: our own refusal text, else status or error type only.

    Exception texts of HTTP libraries may quote the request URL; the full text stays in the
    attempts table (`homevitals webhook attempts`), which only operators read.
    """
    if result.outcome == sender.REFUSED:
        return f"refused: {result.error}"
    if result.status_code is not None:
        return f"{result.outcome} (HTTP {result.status_code})"
    kind = (result.error or "").split(":", 1)[0]
    return f"{result.outcome} ({kind})" if kind else result.outcome


def _page_members(text: str | None) -> dict[str, tuple[str, ...]] | None:
    if text is None:
        return None
    return {team: tuple(members) for team, members in json.loads(text).items()}
