"""``mmsq demo``: a simulated province on 127.0.0.1, with mmsq watching and then acting.

The content platform sends the newspaper (two editions a day) to a simulated handset
population through the MMSC simulator; each night the MMSC exports its CDR file and mmsq
ingests it. The first days mmsq only observes; from then on every capability that exists is
switched on: after each night's ingest mmsq scores every subscriber as of that day and moves
the recovery state machine, and the content platform stops sending to the suspended ones
(mmsq's suspension list) from the next edition on. Help SMS and OTA settings go out through
the SMSC simulator mid-morning; recovery probes (small MMs over MM7) go to suspended
subscribers whose probe is due, and their delivery reports come back over HTTP to mmsq's
MM7 endpoint: a delivered probe resumes delivery for the next edition. Time is compressed:
a day takes a few seconds.

This module is wiring (it builds simulators and adapters), like the CLI and the bootstrap.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from pydantic import SecretStr

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.adapters.http_server import ThreadedHttpServer
from mmsq.adapters.mm7_soap import Mm7DeliveryReport
from mmsq.adapters.mm7_vasp import mm7_delivery_report_router
from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.bootstrap import App, Outreach, build_outreach, mms_outbox
from mmsq.classify import Classifier
from mmsq.delivery_feedback import connect_recovery
from mmsq.devices import load_devices
from mmsq.domain import DeliveryReport
from mmsq.ingest import IngestService
from mmsq.metrics import Metrics
from mmsq.mms_outbox import MmsOutbox
from mmsq.mms_outbox_model import OutboxItem, OutboxKind
from mmsq.msisdn import MsisdnNormaliser
from mmsq.recovery import RecoveryService
from mmsq.remedies import plan_remedies, record_remedies, send_due_probes
from mmsq.report_intake import ReportIntake
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.scoring_rules import load_scoring_rules
from mmsq.scoring_run import ScoringResult, ScoringService
from mmsq.settings import DatabaseSettings, Settings
from mmsq.simulators.mmsc import MmscConfig, MmscSimulator
from mmsq.simulators.mmsc_http import MmscServer
from mmsq.simulators.population import HandsetPopulation
from mmsq.simulators.population_config import PopulationConfig
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig

__all__ = ["DayFigures", "DemoConfig", "DemoResult", "run_demo"]

EDITIONS = (("am", time(7, 0)), ("pm", time(17, 0)))


@dataclass(frozen=True)
class DemoConfig:
    subscribers: int = 8_000
    days: int = 18
    observe_days: int = 4
    seed: int = 7
    workdir: Path = Path("var/demo")
    timezone: str = "Asia/Shanghai"
    default_region: str = "CN"
    rules_dir: Path | None = None
    #: The operator's settings (rules, SMPP window and throughput, outreach); the demo points
    #: the database and the SMPP link at its own store and SMSC simulator.
    settings: Settings | None = None


@dataclass
class DayFigures:
    day: date
    phase: str  # "observe" or "act"
    sent: int
    final: int
    delivered: int
    by_cause: dict[str, int]
    quarantined: int
    unknown_codes: int
    truth: dict[str, int]  # ground-truth verdict counts at the start of the day
    #: What mmsq did after the night's ingest (act phase): ``flagged`` and ``suspended``
    #: (newly, by this day's scoring run), ``under_suspension`` (not sent to from the next
    #: edition on), ``invalid`` (newly on the clean-up list), ``recovered``.
    actions: dict[str, int] = field(default_factory=dict)
    #: Verdict counts of this day's scoring run (act phase).
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return self.delivered / self.final if self.final else None


@dataclass
class DemoResult:
    config: DemoConfig
    days: list[DayFigures]
    endpoints: dict[str, str]
    capabilities: list[str]
    complaints: int
    #: Remedied vs holdout among flagged subscribers: group -> (size, healthy at the end).
    uplift: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Subscribers entering each recovery stage over the act phase (RecoveryService.funnel).
    funnel: dict[str, int] = field(default_factory=dict)
    #: What the help SMS and OTA pushes did to the simulated handsets (ground truth).
    handsets: dict[str, int] = field(default_factory=dict)

    def uplift_rates(self) -> dict[str, float | None]:
        return {g: (ok / n if n else None) for g, (n, ok) in self.uplift.items()}

    def phase_rate(self, phase: str) -> float | None:
        rows = [d for d in self.days if d.phase == phase]
        final = sum(d.final for d in rows)
        return sum(d.delivered for d in rows) / final if final else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscribers": self.config.subscribers,
            "days": [
                {
                    "day": d.day.isoformat(),
                    "phase": d.phase,
                    "sent": d.sent,
                    "final": d.final,
                    "delivered": d.delivered,
                    "success_rate": None if d.success_rate is None else round(d.success_rate, 4),
                    "by_cause": d.by_cause,
                    "quarantined": d.quarantined,
                    "unknown_codes": d.unknown_codes,
                    "truth": d.truth,
                    "verdicts": d.verdicts,
                    "actions": d.actions,
                }
                for d in self.days
            ],
            "observe_success_rate": self.phase_rate("observe"),
            "act_success_rate": self.phase_rate("act"),
            "endpoints": self.endpoints,
            "capabilities": self.capabilities,
            "complaints": self.complaints,
            "uplift": {
                g: {"subscribers": n, "healthy_at_end": ok, "rate": round(ok / n, 4) if n else None}
                for g, (n, ok) in self.uplift.items()
            },
            "funnel": self.funnel,
            "handsets": self.handsets,
        }


class _Clock:
    """The demo's simulated clock, shared by the simulators and mmsq."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


def _truth_counts(population: HandsetPopulation) -> dict[str, int]:
    frame = population.ground_truth_day(population.day)
    counts = frame["expected_verdict"].value_counts()
    return {str(k): int(v) for k, v in counts.items() if v}


def _actions(result: ScoringResult, under_suspension: int) -> dict[str, int]:
    """Newly flagged, suspended, invalid and recovered subscribers of one scoring run."""
    moved = result.transitions
    to_state: dict[str, int] = (
        {str(k): int(v) for k, v in moved["to_state"].value_counts().items()} if len(moved) else {}
    )
    return {
        "flagged": int(to_state.get("flagged", 0)),
        "suspended": int(to_state.get("suspended", 0)),
        "invalid": int(to_state.get("invalid", 0)),
        "recovered": int(to_state.get("recovered", 0)) + int(to_state.get("resumed", 0)),
        "under_suspension": under_suspension,
    }


def _scoring(
    store: SqlStore, config: DemoConfig, clock: _Clock
) -> tuple[ScoringService, RecoveryService]:
    """mmsq's scoring and recovery on the demo's store and simulated clock."""
    recovery_store = SqlRecoveryStore(store.engine)
    rules = load_scoring_rules(config.rules_dir)
    scoring = ScoringService(
        source=recovery_store,
        recovery=recovery_store,
        blacklist=recovery_store,
        rules=rules,
        devices=load_devices(config.rules_dir),
        clock=clock,
        timezone=config.timezone,
    )
    recovery = RecoveryService(
        recovery_store, recovery_store, rules.recovery, clock, config.timezone
    )
    return scoring, recovery


def _act(scoring: ScoringService, recovery: RecoveryService, figures: DayFigures) -> set[str]:
    """Score as of the day just ingested, record what changed; the suspension list after."""
    result = scoring.run(figures.day)
    suspended = set(recovery.suspensions()["msisdn"])
    figures.verdicts = dict(sorted(result.by_verdict.items()))
    figures.actions = _actions(result, len(suspended))
    return suspended


def recovery_source(scoring: ScoringService) -> SqlRecoveryStore:
    source = scoring.recovery
    assert isinstance(source, SqlRecoveryStore)
    return source


def _outreach(
    config: DemoConfig, smsc: SmscSimulator, clock: _Clock, population: HandsetPopulation
) -> Outreach:
    """mmsq's planner and dispatcher on the demo's store, bound to the SMSC simulator."""
    base = config.settings or Settings()
    settings = base.model_copy(
        update={
            "database": DatabaseSettings(url=f"sqlite:///{config.workdir / 'mmsq-demo.db'}"),
            "rules": base.rules.model_copy(update={"dir": config.rules_dir}),
            "smpp": base.smpp.model_copy(
                update={
                    "host": smsc.host,
                    "port": smsc.port,
                    "system_id": smsc.config.system_id,
                    "password": SecretStr(smsc.config.password),
                }
            ),
        }
    )
    # The simulated subscriber types the PIN the help SMS gives them; the population models
    # that as the PIN it already holds for them.
    return build_outreach(
        settings,
        clock=clock,
        new_pin=lambda m: population.user_pin(m) or "0000",
        check_schema=False,
    )


def _dispatch(outreach: Outreach, recovery: RecoveryService, since: datetime) -> dict[str, int]:
    """Send what is due, wait for the receipts, record the remedies the SMSC took."""
    done = outreach.dispatcher.dispatch_once(until_idle=True, receipt_wait_s=1.0, max_seconds=60)
    remedied = record_remedies(recovery, outreach.store.sent_since, since)
    return {"sms_segments": done.accepted, "remedied": remedied}


class _ProbeLink:
    """Recovery probes over MM7, wired as the daemon wires them: the MM7 outbox on the demo's
    store, sending to the MMSC simulator, and mmsq's DeliveryReportReq endpoint (a real HTTP
    server on 127.0.0.1) where the simulator's reports arrive, are correlated with the outbox,
    stored under the ``recovery-probe`` edition and, when delivered, resume the subscriber.
    """

    def __init__(
        self,
        config: DemoConfig,
        store: SqlStore,
        ingest: IngestService,
        recovery: RecoveryService,
        clock: _Clock,
    ) -> None:
        self._settings = config.settings or Settings()
        self._store = store
        self._ingest = ingest
        self._recovery = recovery
        self._clock = clock
        self._resources = ExitStack()
        self.outbox: MmsOutbox | None = None
        self.delivered = 0
        intake = ReportIntake(ingest, store, Metrics(), clock)
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app.include_router(mm7_delivery_report_router(intake, "/mm7/dr", self._correlate))
        self.server = ThreadedHttpServer(app, "127.0.0.1", 0)
        self.server.start()
        self.report_url = f"{self.server.url}/mm7/dr"

    def _correlate(self, report: Mm7DeliveryReport) -> DeliveryReport | None:
        matched = self.outbox.on_delivery_report(report) if self.outbox is not None else None
        return matched.delivery_report() if matched is not None else None

    def connect(self, mmsc_url: str, rules: RuleSet, classifier: Classifier) -> None:
        """The daemon's MM7 outbox (``bootstrap.mms_outbox``), sending to the MMSC simulator
        without a throughput limit."""
        base = self._settings
        settings = base.model_copy(
            update={"mm7": base.mm7.model_copy(update={"url": mmsc_url, "rate_per_s": 0.0})}
        )
        app = App(settings, rules, self._store, classifier, self._ingest, self._clock)
        self.outbox = self._resources.enter_context(mms_outbox(app))
        connect_recovery(self.outbox, self._recovery)
        self.outbox.on_delivered(OutboxKind.PROBE, self._count)

    def _count(self, item: OutboxItem) -> None:
        self.delivered += 1

    def queue(self, day: date) -> int:
        """Queue the probes due on ``day`` (one per subscriber and day)."""
        assert self.outbox is not None
        return send_due_probes(self._recovery, self.outbox, (), day).enqueued

    def send(self) -> int:
        """Submit everything queued; returns how many SubmitReq the MMSC accepted."""
        assert self.outbox is not None
        submitted = 0
        while True:
            done = self.outbox.dispatch_once(limit=500)
            submitted += done.submitted
            if not done.claimed:
                return submitted

    def close(self) -> None:
        self._resources.close()
        self.server.stop()


def _probe(probes: _ProbeLink, mmsc: MmscSimulator, clock: _Clock) -> dict[str, int]:
    """Submit the probes queued last night; an hour later, the reports due by then arrive
    (a delivered probe resumes its subscriber at once)."""
    before = probes.delivered
    submitted = probes.send()
    clock.current += timedelta(hours=1)
    mmsc.deliver_due(clock.current)
    return {"probes_sent": submitted, "probes_delivered": probes.delivered - before}


def _uplift(outreach: Outreach, population: HandsetPopulation) -> dict[str, tuple[int, int]]:
    """Flagged subscribers who got a remedy vs the holdout: how many are healthy at the end."""
    treated = {m for m, _ in outreach.store.sent_since(datetime(1970, 1, 1, tzinfo=UTC))}
    holdout = outreach.store.decided("holdout") - treated
    truth = population.ground_truth_day(population.day)
    healthy = set(truth.loc[truth["expected_verdict"] == "healthy", "msisdn"].astype(str))
    return {
        "remedied": (len(treated), len(treated & healthy)),
        "holdout": (len(holdout), len(holdout & healthy)),
    }


def run_demo(  # noqa: PLR0912, PLR0915 - the simulated day, step by step, reads best in one place
    config: DemoConfig,
    on_day: Callable[[DayFigures], None] | None = None,
) -> DemoResult:
    """Run the simulated days; ``on_day`` sees each day's figures as soon as they exist."""
    tz = ZoneInfo(config.timezone)
    if config.workdir.exists():
        shutil.rmtree(config.workdir)
    (config.workdir / "cdr").mkdir(parents=True)

    population = HandsetPopulation(
        PopulationConfig(subscribers=config.subscribers, seed=config.seed)
    )
    start = population.today
    clock = _Clock(datetime.combine(start, time(0, 0), tzinfo=tz))
    store = SqlStore.from_url(f"sqlite:///{config.workdir / 'mmsq-demo.db'}")
    store.upgrade()
    rules = load_rules(config.rules_dir)
    classifier = Classifier(rules.status_codes)
    ingest = IngestService(
        store=store,
        classifier=classifier,
        normaliser=MsisdnNormaliser(config.default_region),
        clock=clock,
        timezone=config.timezone,
    )
    scoring, recovery = _scoring(store, config, clock)
    acting = config.observe_days < config.days
    capabilities: list[str] = ["ingest"]
    if acting:
        capabilities += ["score", "suspend", "help SMS", "OTA settings", "recovery MMS"]
    probes = _ProbeLink(config, store, ingest, recovery, clock) if acting else None
    # The newspaper's daily figures are the content platform's editions (the nightly CDR);
    # the probes' outcomes reach mmsq through their delivery reports, as in production.
    mmsc = MmscSimulator(
        population,
        MmscConfig(
            seed=config.seed,
            vasp_url=probes.report_url if probes is not None else None,
            cdr_mm7=False,
            report_connections=8,
        ),
        clock=clock,
    )
    smsc = SmscSimulator(SmscConfig(port=0, seed=config.seed), population)
    days: list[DayFigures] = []
    msisdns = population.msisdns().tolist()
    suspended: set[str] = set()
    outreach: Outreach | None = None
    first_act = start + timedelta(days=config.observe_days)
    funnel: dict[str, int] = {}
    try:
        with MmscServer(mmsc) as mmsc_server:
            smsc.start()
            endpoints = {
                "mmsc": mmsc_server.url,
                "smsc": f"smpp://{smsc.host}:{smsc.port}",
            }
            if probes is not None:
                endpoints["mm7_delivery_reports"] = probes.report_url
                probes.connect(mmsc_server.url, rules, classifier)
                outreach = _outreach(config, smsc, clock, population)
            since = clock.now()
            for n in range(config.days):
                day = start + timedelta(days=n)
                population.advance_to(day)
                truth = _truth_counts(population)
                phase = "observe" if n < config.observe_days else "act"
                morning: dict[str, int] = {}
                for name, at in EDITIONS:
                    # The content platform honours mmsq's suspension list.
                    send_to = [m for m in msisdns if m not in suspended] if suspended else msisdns
                    clock.current = datetime.combine(day, at, tzinfo=tz)
                    mmsc.run_bulk_edition(f"ah-daily-{day:%Y%m%d}-{name}", send_to, clock.current)
                    if name == "am" and outreach is not None and probes is not None:
                        # Mid-morning, outside quiet hours and the editions' blackouts: the
                        # contacts planned last night go out through the SMSC simulator and
                        # the probes due today through the MMSC simulator.
                        clock.current = datetime.combine(day, time(10, 0), tzinfo=tz)
                        morning = _dispatch(outreach, recovery, since)
                        since = clock.current
                        morning.update(_probe(probes, mmsc, clock))
                        suspended = set(recovery.suspensions()["msisdn"])
                # The nightly export, a few hours after midnight: the evening edition's
                # stragglers are final by then or still pending.
                clock.current = datetime.combine(day + timedelta(days=1), time(3, 0), tzinfo=tz)
                mmsc.deliver_due(clock.current)  # late probe reports (failures, expiries)
                path = config.workdir / "cdr" / f"cdr-{day:%Y%m%d}.csv.gz"
                mmsc.export_cdr(day, path, gzip=True, as_of=clock.current)
                summary = ingest.ingest([CdrFileReader(path)])
                by_cause = dict(summary.by_cause)
                sent = summary.records
                figures = DayFigures(
                    day=day,
                    phase=phase,
                    sent=sent,
                    final=sent - by_cause.get("pending", 0),
                    delivered=by_cause.get("delivered", 0),
                    by_cause=by_cause,
                    quarantined=summary.quarantined,
                    unknown_codes=sum(summary.unknown_codes.values()),
                    truth=truth,
                )
                if phase == "act":
                    suspended = _act(scoring, recovery, figures)
                    if outreach is not None and probes is not None:
                        planned = plan_remedies(recovery_source(scoring), outreach.planner, day)
                        figures.actions["planned"] = planned.planned
                        figures.actions["probes_queued"] = probes.queue(day + timedelta(days=1))
                    figures.actions.update(morning)
                days.append(figures)
                if on_day is not None:
                    on_day(figures)
            uplift = _uplift(outreach, population) if outreach is not None else {}
            if acting:
                funnel = recovery.funnel(first_act, start + timedelta(days=config.days))
    finally:
        if outreach is not None:
            outreach.close()
        if probes is not None:
            probes.close()
        smsc.stop()
        store.close()
    complaints = Counter(c.reason for c in population.complaints())
    counters = population.counters
    return DemoResult(
        config=config,
        days=days,
        endpoints=endpoints,
        capabilities=capabilities,
        complaints=sum(complaints.values()),
        uplift=uplift,
        funnel=funnel,
        handsets={
            "help_sms_received": counters.texts_received,
            "fixed_by_help_sms": counters.texts_fixed,
            "ota_pushes_received": counters.pushes_received,
            "ota_pushes_applied": counters.pushes_applied,
            "fixed_by_ota": counters.pushes_fixed,
        },
    )
