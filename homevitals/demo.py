"""`homevitals demo`: the whole system on one machine with simulated devices, telling the story
of two patients' first two weeks at home, and checking itself (the demo's composition root).

What runs, as it runs in production:
- Mosquitto with the shipped access rules (`homevitals.demo_broker`), the record store (a
  SQLite file `DIR/homevitals.db`, or `--db`), and as subprocesses ingest with its time-series
  mirror (to `DIR/timeseries.lp`), the webhook delivery worker, the hospital clinic's verifying
  receiver, the care-team API with the dashboard, and the rules engine
  (`homevitals.demo_backend`);
- the care-team record: patients, three care teams with the patients' consent, an enrolment
  code per hub (`homevitals.demo_record`);
- per patient, a simulated meter and cuff on the in-process virtual air and a home hub in this
  process, enrolled with its code and paired with the devices (`homevitals.demo_hubs`);
- the story's clock (`homevitals.demo_clock`): two weeks at `--speed` times real time, ending
  at today; the devices measure as it passes the scenarios' times (`homevitals.demo_devices`);
- the hospital's nurse, who opens each alert from its webhook and acknowledges it
  (`homevitals.demo_nurse`).

It narrates, shows its progress (`homevitals.demo_progress`), and ends with the self-check
(`homevitals.demo_check`): every reading accounted for, the declared alerts received as
verified webhooks, the audit trail intact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.console import Console
from rich.live import Live

from careteam.secrets import SecretBox, new_key_entry
from firmware_sims.air import VirtualAir
from firmware_sims.scenario import Scenario
from firmware_sims.scenario_files import load_scenario
from homevitals import demo_hubs
from homevitals.demo_backend import Backend
from homevitals.demo_check import (
    ANCHOR_FILE,
    WEBHOOKS_FILE,
    CheckResult,
    StoryPatient,
    audit_anchor,
    check_directory,
    write_devices,
    write_story,
)
from homevitals.demo_clock import DemoClock
from homevitals.demo_devices import Home, build_home, device_records, rebased
from homevitals.demo_errors import DemoError
from homevitals.demo_hubs import Hub
from homevitals.demo_nurse import Acknowledged, Nurse
from homevitals.demo_progress import (
    Counts,
    Row,
    StoreCounts,
    headline,
    poll_store,
    render,
    story_day,
)
from homevitals.demo_record import DemoRecord, prepare_store, register_story
from homevitals.demo_report import Narrator, Say, Webhook, parse_webhook_line
from homevitals.demo_story import STORY_SCENARIOS
from ingest.store import make_engine

__all__ = [
    "DEFAULT_SPEED",
    "STORY_SCENARIOS",
    "Demo",
    "DemoOptions",
    "DemoReport",
    "check_only",
    "run_demo",
]
log = logging.getLogger(__name__)

DEFAULT_SPEED = 10_800.0  # a simulated day in 8 s: two weeks in a couple of minutes
POLL_S = 0.5
SETTLE_S = 3.0  # everything done and quiet this long: the run ends
STALL_S = 10.0  # nothing new stored this long after the story: devices keep the rest back
HomeBuilder = Callable[[VirtualAir], Awaitable[Home | list[Home]]]


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo.

    Attributes:
        scenarios: shipped scenario names or TOML paths, one home each (ignored when a home
            builder is given); the default is the story's two patients.
        directory: where configs, logs, databases and the evidence go (default: a temp dir).
        db_url: the record store (default: SQLite at `directory/homevitals.db`).
        speed: simulated seconds per real second while the story plays.
        timeout_s: after the story has caught up with today, give up waiting after this long.
        extra_webhook_urls: more (loopback) endpoints for the hospital clinic, e.g. a test's own
            receiver; their ids are in `DemoReport.extra_endpoints`.
        pairing_page: serve each hub's pairing page (on a free loopback port).
        keep_running: after the self-check, keep everything up (the dashboard) until cancelled.
        progress: show the progress table (live on a terminal, once at the end otherwise).
        secrets_keys: the ``HV_SECRETS_KEYS`` that seal webhook secrets (default: a new key
            for this run; a test that reads a secret back from the record passes its own).
    """

    scenarios: tuple[str, ...] = STORY_SCENARIOS
    directory: Path | None = None
    db_url: str | None = None
    speed: float = DEFAULT_SPEED
    timeout_s: float = 120.0
    extra_webhook_urls: tuple[str, ...] = ()
    pairing_page: bool = True
    keep_running: bool = False
    progress: bool = False
    secrets_keys: str = field(default_factory=new_key_entry)


@dataclass
class DemoReport:
    """What the run saw; `ok` when its self-check passed."""

    directory: Path
    db_url: str = ""
    patients: list[StoryPatient] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    acknowledged: dict[str, Acknowledged] = field(default_factory=dict)
    extra_endpoints: dict[str, str] = field(default_factory=dict)
    check: CheckResult | None = None
    story_s: float = 0.0
    elapsed_s: float = 0.0
    dashboard: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The self-check ran and passed."""
        return self.check is not None and self.check.ok

    def summary_lines(self) -> list[str]:
        """The closing summary: the self-check and the verdict."""
        lines = [] if self.check is None else self.check.lines()
        lines.append(
            f"  took {self.elapsed_s:.0f} s (the accelerated days: {self.story_s:.0f} s); "
            f"files in {self.directory}"
        )
        if self.check is None:
            lines.append("result: FAIL, the run ended before its self-check")
        elif self.check.ok:
            lines.append("result: PASS")
        else:
            lines.append("result: FAIL, " + "; ".join(self.check.failures()))
        return lines


class LiveClock:
    """The story's clock read against the wall clock (shared by devices, hubs and narrator)."""

    def __init__(self, clock: DemoClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        """Simulated time now."""
        return self.clock.at(datetime.now(UTC))

    def start(self) -> DemoClock:
        """Start the simulated time running."""
        self.clock = self.clock.started(datetime.now(UTC))
        return self.clock


class Demo:
    """One run of the whole system (see the module docstring)."""

    def __init__(
        self,
        options: DemoOptions,
        say: Say | None = None,
        home_builder: HomeBuilder | None = None,
    ) -> None:
        self.options = options
        self.console = Console(highlight=False, soft_wrap=True)
        if not self.console.is_terminal:
            self.console.width = 110  # a log or a pipe: room for the table's headers
        self.say = Narrator(say or (lambda text: self.console.print(text, markup=False)))
        self.home_builder = home_builder
        self.workdir = options.directory or Path(tempfile.mkdtemp(prefix="homevitals-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = options.db_url or f"sqlite:///{self.workdir / 'homevitals.db'}"
        self.report = DemoReport(self.workdir, self.db_url)
        self.backend = Backend(
            self.workdir, self.db_url, self.workdir / "care-plan.json", self._on_receiver_line,
            secrets_keys=options.secrets_keys,
        )  # fmt: skip
        self.hubs: list[Hub] = []
        self.players: list[asyncio.Task[int]] = []
        self.nurse: Nurse | None = None
        self.clock = LiveClock(DemoClock(datetime.now(UTC), max(options.speed, 1.001)))
        self._webhooks: asyncio.Queue[Webhook] = asyncio.Queue()
        self._nursing: set[asyncio.Task[None]] = set()
        self._log_handler = _log_to(self.workdir / "demo.log")
        self._live: Live | None = None
        self._rows: list[Row] = []
        self._title = ""
        self._day = 0

    # ----------------------------------------------------------------------------- the run

    async def run(self) -> DemoReport:
        """Run the demo to its end (with `keep_running`, until cancelled).

        Raises:
            DemoError: a part could not be started or stopped unexpectedly.
            ScenarioError: a scenario cannot be loaded.
        """
        try:
            await self._run()
        finally:
            await self.stop()
            self.report.elapsed_s = self.say.elapsed_s
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
        return self.report

    async def stop(self) -> None:
        """Stop the story, the hubs and every child process."""
        for task in [*self.players, *self._nursing]:
            task.cancel()
        for hub in self.hubs:
            await demo_hubs.stop(hub)
        await self.backend.stop()
        if self._live is not None:
            self._live.stop()
            self._live = None

    async def _run(self) -> None:
        say = self.say
        say(f"demo directory {self.workdir} (configs, logs, databases, the self-check's evidence)")
        scenarios = [rebased(load_scenario(name), datetime.now(UTC)) for name in self._scenarios()]
        if scenarios:
            start = min(s.start_utc for s in scenarios)
            self.clock = LiveClock(DemoClock(start, self.options.speed))
        broker = await self.backend.start_broker()
        say(
            f"broker: Mosquitto on 127.0.0.1:{broker.gateway_port} for hubs and "
            f":{broker.service_port} for services, the shipped access rules "
            f"({self.workdir / 'broker'})"
        )
        await asyncio.to_thread(prepare_store, self.db_url)
        say(f"record store: {_safe_url(self.db_url)} (every package's tables migrated)")
        async with VirtualAir() as air:
            homes = await self._homes(air, scenarios)
            record = await self._record(homes)
            await self.backend.start_servers(record.secret)
            say(
                "servers: ingest (mirror to timeseries.lp), delivery worker, the clinic's "
                f"verifying receiver, care-team API and dashboard on {self.backend.api_url}"
            )
            self.nurse = Nurse(self.backend.api_url, self.backend.signing_key,
                               record.hospital.member_id)  # fmt: skip
            for home in homes:
                await self._hub(home, air, record)
            self._write_story()
            await self._play()
            await self._watch()
            await self._check(homes)
            if self.options.keep_running:
                await self._keep_running(record)

    def _scenarios(self) -> tuple[str, ...]:
        return () if self.home_builder is not None else self.options.scenarios

    async def _homes(self, air: VirtualAir, scenarios: list[Scenario]) -> list[Home]:
        if self.home_builder is not None:
            built = await self.home_builder(air)
            return built if isinstance(built, list) else [built]
        homes = []
        for scenario in scenarios:
            home = await build_home(scenario, air, self.clock.now, self.options.speed)
            homes.append(home)
            story = home.story
            self.say(
                f"{story.display_name} ({', '.join(story.conditions) or 'no condition'}; "
                f"{story.timezone}): scenario {scenario.name}, "
                f"{home.readings_planned} readings over the coming days"
            )
        return homes

    async def _record(self, homes: list[Home]) -> DemoRecord:
        patients = [h.story for h in homes]
        (self.workdir / "care-plan.json").write_text(
            json.dumps({k: v for h in homes for k, v in h.care_plan.items()}, indent=2)
        )
        box = SecretBox.from_setting(self.backend.secrets_keys)
        record = await asyncio.to_thread(
            register_story, self.db_url, patients, self.backend.webhook_url,
            self.options.extra_webhook_urls, box=box,
        )  # fmt: skip
        self.report.extra_endpoints = dict(record.extra_endpoints)
        for team in record.teams:
            kinds = ", ".join(team.story.kinds)
            self.say(
                f"care team: {team.story.team}, {team.story.institution} ({team.story.member}) "
                f"follows {' and '.join(p.display_name for p in patients)}; consent: {kinds}"
                + (f"; webhooks to {record.url}" if team.story.webhooks else "")
            )
        return record

    async def _hub(self, home: Home, air: VirtualAir, record: DemoRecord) -> None:
        assert self.backend.broker is not None
        address = f"C0:11:22:33:{0x50 + len(self.hubs):02X}:01"
        hub = Hub(home, self.workdir / f"hub-{home.patient_id}", demo_hubs.HubRadio(air, address))
        self.hubs.append(hub)
        await demo_hubs.enrol(
            hub, self.db_url, record.hospital.member_id, self.backend.enrolment_url, self.say
        )
        hub.settings = demo_hubs.hub_settings(
            hub, self.backend.broker.gateway_port, self.options.pairing_page
        )
        await demo_hubs.pair(hub, self.clock.now, self.say)
        demo_hubs.start(hub, self.clock.now)
        self.say(
            f"{home.story.display_name}: hub {hub.gateway_id} running (pairing page "
            f"{hub.page_url or 'off'})"
        )

    def _write_story(self) -> None:
        self.report.patients = [
            StoryPatient(
                h.home.patient_id, h.home.story.display_name, h.gateway_id,
                h.directory.name, dict(h.home.expected),
            )
            for h in self.hubs
        ]  # fmt: skip
        write_story(self.workdir, self.report.patients)

    async def _play(self) -> None:
        clock = self.clock.start()
        now = datetime.now(UTC)
        self.report.story_s = clock.running_s()
        for hub in self.hubs:
            if hub.home.player is not None:
                self.players.append(asyncio.create_task(hub.home.player.run()))
        await self.backend.start_engine(clock)
        zone = self.hubs[0].home.story.timezone if self.hubs else "UTC"
        _, days = story_day(clock.sim_start, clock.sim_start, clock.caught_up_at() or now, zone)
        self.say(
            f"the story starts: {days} days (to today) at {clock.speed:g}x, about "
            f"{clock.running_s():.0f} s; the rules engine follows the story's clock"
        )

    # ------------------------------------------------------------------------ watching it

    def _on_receiver_line(self, line: str) -> None:
        hook = parse_webhook_line(line)
        if hook is None:
            return
        with (self.workdir / WEBHOOKS_FILE).open("a") as out:
            out.write(line + "\n")
        self._webhooks.put_nowait(hook)

    def _names(self) -> dict[str, str]:
        return {h.home.patient_id: h.home.story.display_name for h in self.hubs}

    async def _watch(self) -> None:
        engine = make_engine(self.db_url)
        loop = asyncio.get_running_loop()
        self._start_live_display()
        seen_events: set[str] = set()
        live_engine = False
        last_stored, quiet_since, deadline = -1, loop.time(), None
        try:
            while deadline is None or loop.time() < deadline:
                self._check_alive()
                counts = await asyncio.to_thread(poll_store, engine)
                events = await asyncio.to_thread(_new_events, engine, seen_events)
                self._tell_events(events)
                self._take_webhooks()
                self._show(counts)
                self._tell_day(counts)
                if not live_engine and (code := self.backend.engine_done()) is not None:
                    if code != 0:
                        raise DemoError(
                            f"the rules engine on the story's clock failed (exit {code})"
                        )
                    await self.backend.start_live_engine()
                    live_engine = True
                    deadline = loop.time() + self.options.timeout_s
                    self.say("the story has caught up with today: `homevitals alerts run` goes on")
                stored = sum(counts.stored.values()) + sum(counts.quarantined.values())
                if stored != last_stored:
                    last_stored, quiet_since = stored, loop.time()
                quiet_s = loop.time() - quiet_since
                if live_engine and all(p.done() for p in self.players):
                    settled = (
                        self._expected_arrived()
                        and counts.pending_deliveries == 0
                        and not self._nursing
                    )
                    if (settled and quiet_s >= SETTLE_S) or quiet_s >= STALL_S:
                        return
                await asyncio.sleep(POLL_S)
            self.say(f"gave up waiting {self.options.timeout_s:.0f} s after the story ended")
        finally:
            engine.dispose()

    def _tell_day(self, counts: StoreCounts) -> None:
        """One line when a new day starts in the first patient's home."""
        clock = self.clock.clock
        if not self.hubs or clock.started_at is None:
            return
        zone = self.hubs[0].home.story.timezone
        now = self.clock.now()
        day, days = story_day(now, clock.sim_start, clock.caught_up_at() or now, zone)
        if day == self._day:
            return
        self._day = day
        produced = sum(h.home.readings_held for h in self.hubs)
        stored = sum(counts.stored.values())
        local = now.astimezone(ZoneInfo(zone))
        self.say(
            f"day {day} of {days}, {local:%a %d %b}: {produced} readings taken so far, "
            f"{stored} in the record store"
        )

    def _check_alive(self) -> None:
        service = self.backend.stopped_unexpectedly()
        if service is not None:
            raise DemoError(f"{service.name} stopped unexpectedly; see {service.log_path}")
        for hub in self.hubs:
            why = demo_hubs.failed(hub)
            if why is not None:
                raise DemoError(why)
        for player in self.players:
            if player.done() and not player.cancelled() and player.exception() is not None:
                raise DemoError(f"a simulated device failed: {player.exception()!r}")

    def _expected_arrived(self) -> bool:
        got = {(h.patient_id, h.rule_id) for h in self.report.webhooks if h.type == "alert.opened"}
        return all((h.home.patient_id, rule) in got for h in self.hubs for rule in h.home.expected)

    def _tell_events(self, events: list[tuple[str, str, str | None, str | None, datetime]]) -> None:
        names = self._names()
        for kind, patient, rule, priority, at in events:
            zone = next((h.home.story.timezone for h in self.hubs if h.home.patient_id == patient),
                        "UTC")  # fmt: skip
            local = _local(at, zone)
            self.say(
                f"rules engine: {kind} {rule} (priority {priority}) for "
                f"{names.get(patient, patient)}, {local}"
            )

    def _take_webhooks(self) -> None:
        names = self._names()
        while not self._webhooks.empty():
            hook = self._webhooks.get_nowait()
            self.report.webhooks.append(hook)
            who = names.get(hook.patient_id or "", hook.patient_id or "-")
            if hook.type != "alert.updated":  # counted in the table, not told one by one
                self.say(
                    f"hospital clinic received {hook.type} {hook.rule_id or ''} for {who}, "
                    f"webhook-id {hook.webhook_id[:13]}: signature verified"
                )
            if self.nurse is not None and hook.type == "alert.opened":
                task = asyncio.create_task(self._acknowledge(hook))
                self._nursing.add(task)
                task.add_done_callback(self._nursing.discard)

    async def _acknowledge(self, hook: Webhook) -> None:
        assert self.nurse is not None
        got = await self.nurse.handle(hook)
        if isinstance(got, Acknowledged):
            self.report.acknowledged[got.alert_id] = got
            who = self._names().get(got.patient_id or "", "-")
            self.say(
                f"Nurse on call opened the {got.rule_id} alert for {who} (evidence: "
                f"{got.evidence_readings} readings) and acknowledged it"
            )
        elif got is not None:
            self.say(f"Nurse on call could not acknowledge {hook.alert_id}: {got}")

    # ------------------------------------------------------------------------- progress

    def _start_live_display(self) -> None:
        if self.options.progress and self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def _show(self, counts: StoreCounts) -> None:
        acked: dict[str, int] = {}
        for a in self.report.acknowledged.values():
            acked[a.patient_id or ""] = acked.get(a.patient_id or "", 0) + 1
        delivered: dict[str, int] = {}
        for h in self.report.webhooks:
            delivered[h.patient_id or ""] = delivered.get(h.patient_id or "", 0) + 1
        rows = []
        for hub in self.hubs:
            pid = hub.home.patient_id
            rows.append(Row(hub.home.story.display_name, Counts(
                hub.home.readings_held, counts.stored.get(pid, 0),
                counts.quarantined.get(hub.gateway_id, 0), counts.mirrored.get(pid, 0),
                counts.alerts.get(pid, 0), delivered.get(pid, 0), acked.get(pid, 0),
            )))  # fmt: skip
        self._rows = rows
        clock, wall = self.clock.clock, datetime.now(UTC)
        zone = self.hubs[0].home.story.timezone if self.hubs else "UTC"
        caught_up = clock.caught_up_at()
        running = caught_up is None or wall < caught_up
        self._title = headline(
            self.clock.now(), clock.sim_start, caught_up or wall, zone=zone, speed=clock.speed,
            running=running,
        )  # fmt: skip
        if self._live is not None:
            self._live.update(render(self._title, rows))

    # ---------------------------------------------------------------------- the verdict

    async def _check(self, homes: list[Home]) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self.options.progress:
            self.console.print(render(self._title, self._rows))
        records = {h.patient_id: [r for d in h.devices for r in device_records(d)] for h in homes}
        await asyncio.to_thread(write_devices, self.workdir, records)
        await asyncio.to_thread(audit_anchor, self.db_url, self.workdir / ANCHOR_FILE)
        self.report.check = await asyncio.to_thread(check_directory, self.workdir, self.db_url)
        self.report.elapsed_s = self.say.elapsed_s
        for line in self.report.summary_lines():
            self.say.plain(line)

    async def _keep_running(self, record: DemoRecord) -> None:
        members = ", ".join(
            f"{t.member_id} ({t.story.member}, {t.story.institution}; sees "
            f"{', '.join(t.story.kinds)})"
            for t in record.teams
        )
        lines = [
            f"dashboard: {self.backend.api_url}/dashboard/",
            f"  development sign-in code: {self.backend.dashboard_code}",
            f"  members: {members}",
            *(f"  pairing page of {h.home.story.display_name}'s hub: {h.page_url}"
              for h in self.hubs if h.page_url),
            "  (Ctrl-C stops everything; the record store stays in the demo directory)",
        ]  # fmt: skip
        (self.workdir / "dashboard-login.txt").write_text("\n".join(lines) + "\n")
        self.report.dashboard = lines
        for line in lines:
            self.say.plain(line)
        await asyncio.Event().wait()  # until cancelled (Ctrl-C)


def _new_events(
    engine: sa.Engine, seen: set[str]
) -> list[tuple[str, str, str | None, str | None, datetime]]:
    """Alert events the engine committed since the last call (opened and resolved)."""
    from alerts.engine import tables as engine_tables  # noqa: PLC0415

    e = engine_tables.alert_events.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.event_id, e.type, e.patient_id, e.rule_id, e.priority, e.occurred_at)
            .where(e.type.in_(("alert.opened", "alert.resolved")))
            .order_by(e.occurred_at, e.event_id)
        ).all()
    out = []
    for event_id, kind, patient, rule, priority, occurred in rows:
        if event_id in seen:
            continue
        seen.add(event_id)
        at = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
        out.append((str(kind), str(patient), rule, priority, at))
    return out


def _local(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%a %d %b %H:%M} ({zone})"


def _log_to(path: Path) -> logging.Handler:
    """Send this process's logs (hubs, devices) to `path`: the terminal tells the story."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


async def run_demo(
    options: DemoOptions, say: Say | None = None, home_builder: HomeBuilder | None = None
) -> DemoReport:
    """Run the demo (see the module docstring) and return its report.

    `home_builder` replaces the scenarios with devices the caller builds on the air (tests);
    `say` replaces printing to the terminal.

    Raises:
        DemoError: a part could not be started, or stopped while the demo ran.
        ScenarioError: a scenario cannot be loaded.
    """
    return await Demo(options, say, home_builder).run()


def check_only(directory: Path, db_url: str | None = None) -> CheckResult:
    """Judge a finished run again from its directory (`homevitals demo --check-only`).

    Raises:
        DemoError: the directory lacks the run's evidence.
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read.
    """
    url = db_url or f"sqlite:///{directory / 'homevitals.db'}"
    if db_url is None and not (directory / "homevitals.db").exists():
        raise DemoError(f"{directory / 'homevitals.db'} is missing: not a demo directory")
    return check_directory(directory, url)
