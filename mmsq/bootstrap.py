"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from mmsq.adapters.reconcile_files import SendListDropFolder
from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.blacklist import BlacklistService
from mmsq.classify import Classifier
from mmsq.daemon import Daemon
from mmsq.devices import DeviceCatalogue, load_devices
from mmsq.health import HealthRegistry
from mmsq.housekeeping import RetentionPurgeJob
from mmsq.inbox import InboxIngestJob
from mmsq.ingest import IngestService
from mmsq.jobs import Job, JobFunc, JobRegistry, JobRunner, Schedule
from mmsq.metrics import Metrics
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock, EventStore
from mmsq.reconcile import ReconcileService
from mmsq.recovery import RecoveryService
from mmsq.report import ReportRun
from mmsq.report_intake import ReportIntake
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.scoring_ports import SubscriptionStatusLookup
from mmsq.scoring_rules import ScoringRules, load_scoring_rules
from mmsq.scoring_run import ScoringService
from mmsq.settings import JobSchedule, Settings
from mmsq.shutdown import ShutdownHooks
from mmsq.subscription_events import SubscriptionEventService
from mmsq.subscription_import import SnapshotImportService

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from starlette.types import ASGIApp

    from mmsq.adapters.http_server import ThreadedHttpServer
    from mmsq.adapters.mm7_client import Mm7ClientConfig
    from mmsq.adapters.mm7_soap import Mm7DeliveryReport
    from mmsq.adapters.mm7_vasp import Correlate
    from mmsq.adapters.scheduler import ApsScheduler
    from mmsq.adapters.smpp_client import SmppGateway
    from mmsq.adapters.sql_outbox import SqlOutbox
    from mmsq.adapters.sql_report import SqlReportSource
    from mmsq.api.services import ApiServices
    from mmsq.diagnosis import RecoveryReader
    from mmsq.dispatch import Dispatcher
    from mmsq.domain import DeliveryReport
    from mmsq.mms import MmsGateway
    from mmsq.mms_dispatcher import MmsDispatcher
    from mmsq.mms_outbox import MmsOutbox
    from mmsq.outbox import OutreachMetrics
    from mmsq.outreach_plan import OutreachPlanner
    from mmsq.rate_limit import RateLimits
    from mmsq.resend import ResendOutbox

__all__ = [
    "OPTIONAL_JOBS",
    "App",
    "DaemonApp",
    "Outreach",
    "ScoringApp",
    "SubscriptionServices",
    "SystemClock",
    "api_rate_limits_path",
    "api_server_app",
    "build_api_services",
    "build_app",
    "build_daemon",
    "build_outreach",
    "build_scoring",
    "build_subscriptions",
    "mm7_client_config",
    "mms_outbox",
    "report_source",
    "score_job",
    "weekly_report_job",
]


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    rules: RuleSet
    store: SqlStore
    classifier: Classifier
    ingest: IngestService
    clock: Clock

    def close(self) -> None:
        self.store.close()


def build_app(settings: Settings, *, check_schema: bool = True) -> App:
    """Everything a command needs, built once; raises RulesError or SchemaNotCurrentError."""
    rules = load_rules(settings.rules.dir)
    store = SqlStore.from_url(settings.database_url, settings.database.echo)
    if check_schema:
        try:
            store.check_schema()
        except Exception:
            store.close()
            raise
    clock = SystemClock()
    classifier = Classifier(rules.status_codes)
    ingest = IngestService(
        store=store,
        classifier=classifier,
        normaliser=MsisdnNormaliser(settings.ingest.default_region),
        clock=clock,
        timezone=settings.ingest.timezone,
        notify_status_source=settings.ingest.notify_status_source,
    )
    return App(settings, rules, store, classifier, ingest, clock)


def report_source(app: App) -> SqlReportSource:
    """The weekly report's figures on the app's store, with the recovery funnel.

    Raises RulesError when scoring.toml is invalid."""
    from mmsq.adapters.sql_report import SqlReportSource

    rules = load_scoring_rules(app.settings.rules.dir)
    store = SqlRecoveryStore(app.store.engine)
    tz = app.settings.ingest.timezone
    recovery = RecoveryService(store, store, rules.recovery, app.clock, tz)
    return SqlReportSource(app.store, recovery=recovery, timezone=tz)


def weekly_report_job(app: App) -> Callable[[], ReportRun]:
    """The weekly report as a job for the daemon's scheduler (``report.schedule``)."""
    from mmsq.adapters.smtp_mailer import SmtpConfig, SmtpMailer
    from mmsq.report import ReportConfig, send_weekly_report
    from mmsq.report_devices import load_device_table

    settings = app.settings

    def run() -> ReportRun:
        # Imported when the job runs: building the daemon does not depend on the report stack.

        return send_weekly_report(
            report_source(app),
            SmtpMailer(SmtpConfig.from_settings(settings.report)),
            ReportConfig.from_settings(settings),
            devices=load_device_table(settings.report.devices_file, settings.rules.dir),
            clock=app.clock,
        )

    return run


# -- the daemon ------------------------------------------------------------------------------
#
# `mmsq daemon` is assembled here and only here: jobs are named callables built from services
# that exist, health checks and shutdown hooks are registered by the component they belong to,
# and the HTTP app receives the routers it serves.

#: Jobs whose services are built on other lines of work. Each has a schedule in the config
#: ([daemon.jobs.<name>]) but is registered only once `_optional_jobs` returns it.
OPTIONAL_JOBS: tuple[str, ...] = (
    "score",
    "plan",
    "dispatch",
    "reconcile",
    "reconcile_monthly",
    "weekly_report",
    "probe",
)


@dataclass
class DaemonApp:
    """The daemon and its parts (tests and later components reach them here)."""

    app: App
    daemon: Daemon
    jobs: JobRegistry
    runner: JobRunner
    health: HealthRegistry
    hooks: ShutdownHooks
    metrics: Metrics
    scheduler: ApsScheduler
    http: ThreadedHttpServer
    unavailable_jobs: list[str]

    def run(self) -> int:
        return self.daemon.run()


def _schedule(cfg: JobSchedule) -> Schedule:
    return Schedule(
        interval_s=cfg.interval_s,
        cron=cfg.cron,
        coalesce=cfg.coalesce,
        misfire_grace_s=cfg.misfire_grace_s,
    )


def _optional_jobs(
    app: App,
    health: HealthRegistry,
    hooks: ShutdownHooks,
    metrics: Metrics,
    outbox: MmsOutbox | None = None,
) -> dict[str, tuple[JobFunc, str]]:
    """EXTENSION POINTS: the jobs of services that are not part of this version yet.

    When a service lands, build it in `build_app` (or here), return its job under the name it
    has in OPTIONAL_JOBS, and register what else it needs, for example:

        jobs["score"] = (app.scoring.run_daily, "score subscribers over daily aggregates")
        jobs["plan"] = (app.planner.plan_day, "plan help contacts (mmsq.contact_policy)")
        jobs["dispatch"] = (app.dispatcher.drain_once, "send planned help SMS from the outbox")
        health.add("smpp_bind", app.dispatcher.bind_health)   # raises while unbound
        hooks.add("smpp", app.dispatcher.close)                # checkpoint the outbox, unbind
        jobs["reconcile"] = (app.reconciler.run, "reconcile BOSS/MISC/content subscriptions")
        jobs["weekly_report"] = (app.reporter.send_weekly, "e-mail the weekly report")

    The SMPP adapter, outbox and dispatcher update the `metrics` passed here (queue depth,
    messages and segments sent, throttling events, receipt lag, unmatched receipts).
    """
    jobs: dict[str, tuple[JobFunc, str]] = {}
    report = weekly_report_job(app)

    def weekly_report() -> dict[str, object]:
        run = report()
        return {"sent": run.sent, "attempts": run.attempts, "spooled": str(run.spooled or "")}

    jobs["weekly_report"] = (weekly_report, "e-mail the weekly success-rate report")

    subscriptions = build_subscriptions(app)
    export_dir = app.settings.reconcile.export_dir

    def reconcile() -> dict[str, object]:
        from mmsq.adapters.reconcile_files import CsvDifferenceExport

        report = subscriptions.reconcile.reconcile(
            None, CsvDifferenceExport(export_dir) if export_dir else None
        ).as_dict()
        return {"counts": report["counts"], "compared": report["compared"]}

    jobs["reconcile"] = (reconcile, "reconcile BOSS, MISC and the content platform's send list")

    def reconcile_monthly() -> dict[str, object]:
        from mmsq.adapters.reconcile_files import CsvDifferenceExport

        month = app.clock.now().strftime("%Y-%m")
        target = export_dir / f"monthly-{month}" if export_dir else None
        report = subscriptions.reconcile.reconcile(
            None, CsvDifferenceExport(target) if target else None
        ).as_dict()
        return {"month": month, "counts": report["counts"], "compared": report["compared"]}

    jobs["reconcile_monthly"] = (reconcile_monthly, "the monthly reconciliation, exported apart")
    jobs["score"] = (
        score_job(app),
        "score subscribers over the daily aggregates and move the recovery state machine",
    )
    jobs.update(_outreach_jobs(app, health, hooks, metrics))
    if outbox is not None:
        jobs["probe"] = (
            probe_job(app, outbox),
            "queue recovery probe MMs for suspended subscribers whose next probe is due",
        )
    return jobs


def probe_job(app: App, outbox: MmsOutbox) -> JobFunc:
    """The ``probe`` job: a recovery probe MM (MM7 outbox) for each suspended subscriber
    whose next probe is due today, do-not-contact subscribers left out. A delivered probe
    resumes the subscriber (``connect_recovery`` on the same outbox)."""
    from mmsq.remedies import send_due_probes

    scoring = build_scoring(app)

    def probe() -> dict[str, object]:
        day = scoring.recovery.today()
        listed = set(scoring.store.blacklist_active(day)["msisdn"].astype(str))
        return dict(send_due_probes(scoring.recovery, outbox, listed, day).as_dict())

    return probe


def _outreach_jobs(
    app: App, health: HealthRegistry, hooks: ShutdownHooks, metrics: Metrics
) -> dict[str, tuple[JobFunc, str]]:
    """``plan`` (flagged subscribers -> planned contacts) and ``dispatch`` (the outbox to the
    SMSC, then flagged -> remedied for what the SMSC took). The SMPP bind is opened by the
    first dispatch and closed at shutdown."""
    from mmsq.remedies import plan_remedies, record_remedies

    scoring = build_scoring(app)
    from mmsq.metrics import OutreachPrometheus

    outreach = build_outreach(
        app.settings,
        clock=app.clock,
        check_schema=False,
        metrics=OutreachPrometheus(metrics),
    )
    last_round: list[datetime] = [app.clock.now()]
    dispatch_cfg = app.settings.daemon.jobs.dispatch

    def bind_health() -> str:
        # The bind opens with the first dispatch that has work; until then there is none to
        # judge. Once opened, a bind that is down makes the daemon not ready.
        state = str(outreach.gateway.state)
        if state == "stopped":
            return "not bound (no dispatch has run)"
        if not outreach.gateway.healthy():
            raise RuntimeError(f"SMPP bind {state}")
        return state

    health.add("smpp_bind", bind_health)
    hooks.add("outreach", outreach.close)

    def plan() -> dict[str, object]:
        summary = plan_remedies(scoring.store, outreach.planner, scoring.recovery.today())
        return dict(summary.as_dict())

    def dispatch() -> dict[str, object]:
        started = app.clock.now()
        budget = (dispatch_cfg.interval_s or 30.0) * 0.8
        done = outreach.dispatcher.dispatch_once(until_idle=True, max_seconds=budget)
        moved = record_remedies(scoring.recovery, outreach.store.sent_since, last_round[0])
        last_round[0] = started
        return {"submitted": done.submitted, "accepted": done.accepted, "remedied": moved}

    return {
        "plan": (plan, "plan help SMS and OTA pushes for flagged subscribers (contact policy)"),
        "dispatch": (dispatch, "send due contacts to the SMSC; record remedies sent"),
    }


def _daemon_jobs(
    settings: Settings,
    app: App,
    ingest: IngestService,
    store: EventStore,
    parts: tuple[Metrics, HealthRegistry, ShutdownHooks],
    stopping: Callable[[], bool],
    outbox: MmsOutbox | None = None,
) -> tuple[JobRegistry, list[str]]:
    """The daemon's jobs, built from the services that exist; also the names still missing."""
    from mmsq.adapters.cdr_csv import CdrFileReader
    from mmsq.adapters.cdr_inbox import DirectoryInbox

    cfg = settings.daemon
    metrics, health, hooks = parts
    jobs = JobRegistry()
    inbox = DirectoryInbox(
        cfg.inbox_dir or settings.data_dir / "inbox",
        cfg.done_dir or settings.data_dir / "done",
        cfg.failed_dir or settings.data_dir / "failed",
        settle_s=cfg.settle_s,
    )
    inbox.ensure_dirs()
    inbox_dir = inbox.inbox
    chunk_bytes = settings.ingest.chunk_bytes
    optional = _optional_jobs(app, health, hooks, metrics, outbox)
    if cfg.jobs.inbox.enabled:
        read = InboxIngestJob(
            inbox, ingest, lambda path: CdrFileReader(path, chunk_bytes), metrics, stopping
        )
        score = optional.get("score") if cfg.jobs.score.enabled else None

        def ingest_then_score() -> dict[str, object]:
            # Scoring follows every ingest that stored something new, so verdicts and
            # suspensions are as fresh as the data; the score job's own schedule remains.
            result = read()
            if score is not None and int(str(result.get("stored", 0))) > 0:
                result["score"] = score[0]()
            return result

        jobs.add(
            Job(
                "inbox", ingest_then_score, _schedule(cfg.jobs.inbox), f"ingest CDRs in {inbox_dir}"
            )
        )
    if cfg.jobs.purge.enabled:
        purge = RetentionPurgeJob(store, app.clock, settings.ingest.retention_days, metrics)
        jobs.add(Job("purge", purge, _schedule(cfg.jobs.purge), "delete raw events past retention"))
    unavailable = []
    for name in OPTIONAL_JOBS:
        schedule_cfg: JobSchedule = getattr(cfg.jobs, name)
        if not schedule_cfg.enabled:
            continue
        if name in optional:
            func, description = optional[name]
            jobs.add(Job(name, func, _schedule(schedule_cfg), description))
        else:
            unavailable.append(name)
    return jobs, unavailable


def _core_health_checks(health: HealthRegistry, store: SqlStore, scheduler: ApsScheduler) -> None:
    def database() -> str:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return str(store.dialect)

    def schema() -> str:
        store.check_schema()
        return "current"

    health.add("database", database)
    health.add("schema", schema)
    health.add("scheduler", scheduler.health)


def _outbox_and_api(
    app: App, hooks: ShutdownHooks, resources: ExitStack
) -> tuple[MmsDispatcher, FastAPI, Correlate, MmsOutbox]:
    """The daemon's MM7 outbox and agent API.

    The outbox's dispatcher starts with the daemon and stops in a shutdown hook; delivery
    reports are correlated with the outbox before they are stored (``correlate``); delivered
    probes and resends reach the recovery service. The API is built on the same outbox and
    recovery service; its audit writer is closed by a hook, and again after the HTTP server
    stopped (a request that was still running meanwhile).
    """
    from mmsq.api import create_app
    from mmsq.delivery_feedback import connect_recovery
    from mmsq.mms_dispatcher import MmsDispatcher

    outbox = resources.enter_context(mms_outbox(app))
    dispatcher = MmsDispatcher(outbox, app.clock)
    scoring = build_scoring(app)
    connect_recovery(outbox, scoring.recovery)
    api = create_app(
        build_api_services(
            app.settings,
            app.store.engine,
            outbox=outbox,
            recovery=scoring.recovery,
            clock=app.clock,
        )
    )
    audit_writer = api.state.audit_writer
    hooks.add("mm7_outbox", lambda: _stop_dispatcher(dispatcher))
    hooks.add("api_audit", audit_writer.close)
    resources.callback(audit_writer.close)

    def correlate(report: Mm7DeliveryReport) -> DeliveryReport | None:
        matched = outbox.on_delivery_report(report)
        return matched.delivery_report() if matched is not None else None

    return dispatcher, api, correlate, outbox


def _stop_dispatcher(dispatcher: MmsDispatcher) -> None:
    """A shutdown hook: the SubmitReq in flight are answered first (bounded)."""
    if not dispatcher.stop(timeout=30.0):
        raise TimeoutError(
            "the MM7 dispatcher did not stop within 30 s; items in flight are recovered "
            "after their lease"
        )


def build_daemon(
    settings: Settings,
    *,
    routers: Sequence[APIRouter] = (),
    mounts: Sequence[tuple[str, ASGIApp]] = (),
) -> DaemonApp:
    """Everything `mmsq daemon` runs: the jobs, the HTTP server (MM7 delivery reports, probes,
    metrics, the agent API under /v1), the MM7 outbox dispatcher. `routers`/`mounts` add more
    HTTP routes."""
    # Imported here so that the other commands do not pay for the web and scheduler stacks.
    from mmsq.adapters.daemon_http import create_http_app
    from mmsq.adapters.http_server import ThreadedHttpServer
    from mmsq.adapters.mm7_vasp import mm7_delivery_report_router
    from mmsq.adapters.scheduler import ApsScheduler
    from mmsq.adapters.sql_write_lock import SerialisedWrites
    from mmsq.api.app import settle_heap
    from mmsq.api.routes import PREFIX as API_PREFIX

    cfg = settings.daemon
    app = build_app(settings)
    resources = ExitStack()
    try:
        # Several threads write here (jobs, the MM7 endpoint): on SQLite they take turns.
        store: EventStore = app.store
        if app.store.dialect == "sqlite":
            store = SerialisedWrites(app.store)
        ingest = IngestService(
            store=store,
            classifier=app.classifier,
            normaliser=MsisdnNormaliser(settings.ingest.default_region),
            clock=app.clock,
            timezone=settings.ingest.timezone,
            notify_status_source=settings.ingest.notify_status_source,
        )
        metrics = Metrics()
        health = HealthRegistry()
        hooks = ShutdownHooks()
        stop_event = threading.Event()
        # The MM7 outbox first: the probe job queues into it.
        dispatcher, api, correlate, outbox = _outbox_and_api(app, hooks, resources)
        jobs, unavailable = _daemon_jobs(
            settings, app, ingest, store, (metrics, health, hooks), stop_event.is_set, outbox
        )
        runner = JobRunner(jobs, metrics)
        scheduler = ApsScheduler(
            app.store.engine, runner, metrics, settings.ingest.timezone, workers=cfg.workers
        )
        _core_health_checks(health, app.store, scheduler)
        intake = ReportIntake(ingest, store, metrics, app.clock)
        http_app = create_http_app(
            health=health,
            metrics=metrics,
            routers=[
                mm7_delivery_report_router(intake, cfg.mm7_dr_path, correlate=correlate),
                *routers,
            ],
            mounts=[(API_PREFIX, api), *mounts],
        )
        http = ThreadedHttpServer(
            http_app, cfg.host, cfg.port, graceful_s=min(10.0, cfg.shutdown_grace_s)
        )
        settle_heap()  # everything is built: out of the collector's full collections

        def close() -> None:
            try:
                resources.close()
            finally:
                app.close()

        daemon = Daemon(
            scheduler=scheduler,
            http=http,
            hooks=hooks,
            shutdown_grace_s=cfg.shutdown_grace_s,
            stop_event=stop_event,
            on_close=close,
            on_start=[dispatcher.start],
        )
    except BaseException:
        try:
            resources.close()
        finally:
            app.close()
        raise
    return DaemonApp(
        app, daemon, jobs, runner, health, hooks, metrics, scheduler, http, unavailable
    )


# -- subscriptions and reconciliation -------------------------------------------------------


@dataclass
class SubscriptionServices:
    """The subscription store and the services on it, sharing the app's engine and clock."""

    store: SqlSubscriptionStore
    imports: SnapshotImportService
    events: SubscriptionEventService
    reconcile: ReconcileService


def build_subscriptions(app: App) -> SubscriptionServices:
    """Subscription services for ``app`` (closed with it: they share its engine)."""
    settings = app.settings
    store = SqlSubscriptionStore(app.store.engine)
    normaliser = MsisdnNormaliser(settings.ingest.default_region)
    rc = settings.reconcile
    send_list = SendListDropFolder(rc.repair_dir, app.clock) if rc.repair_dir else None
    return SubscriptionServices(
        store=store,
        imports=SnapshotImportService(store, normaliser, app.clock, settings.ingest.timezone),
        events=SubscriptionEventService(store, normaliser, app.clock),
        reconcile=ReconcileService(
            store,
            app.clock,
            settings.ingest.timezone,
            stale_after_days=rc.stale_after_days,
            auto_repair=rc.auto_repair,
            send_list=send_list,
            examples=rc.examples,
        ),
    )


# -- scoring and recovery ------------------------------------------------------------------


@dataclass
class ScoringApp:
    """Scoring, recovery and the do-not-contact list, wired on an App's store and clock."""

    rules: ScoringRules
    devices: DeviceCatalogue
    store: SqlRecoveryStore
    scoring: ScoringService
    recovery: RecoveryService
    blacklist: BlacklistService


def build_scoring(app: App, subscriptions: SubscriptionStatusLookup | None = None) -> ScoringApp:
    """Raises RulesError when scoring.toml or devices.csv is invalid. The subscription status
    comes from the subscription store (``mmsq subscriptions import`` and events) unless
    ``subscriptions`` is given; subscribers it does not know are ``unknown``."""
    if subscriptions is None:
        subscriptions = SqlSubscriptionStore(app.store.engine)
    rules = load_scoring_rules(app.settings.rules.dir)
    devices = load_devices(app.settings.rules.dir)
    # Two threads: the next days of aggregates are read while the last ones are folded.
    store = SqlRecoveryStore(app.store.engine, workers=2)
    tz = app.settings.ingest.timezone
    scoring = ScoringService(
        source=store,
        recovery=store,
        blacklist=store,
        rules=rules,
        devices=devices,
        clock=app.clock,
        subscriptions=subscriptions,
        timezone=tz,
    )
    recovery = RecoveryService(store, store, rules.recovery, app.clock, tz)
    blacklist = BlacklistService(
        store, MsisdnNormaliser(app.settings.ingest.default_region), app.clock
    )
    return ScoringApp(rules, devices, store, scoring, recovery, blacklist)


def mm7_client_config(settings: Settings) -> Mm7ClientConfig:
    """The MM7 client for the outbox, from ``[mm7]``.

    One attempt per SubmitReq: the outbox retries, persisted and with backoff, so that a retry
    survives a restart and every attempt is accounted for.
    """
    from mmsq.adapters.mm7_client import Mm7ClientConfig

    mm7 = settings.mm7
    return Mm7ClientConfig(
        url=mm7.url,
        vaspid=mm7.vaspid,
        vasid=mm7.vasid,
        service_code=mm7.service_code,
        sender_address=mm7.sender_address,
        username=mm7.username,
        password=mm7.password.get_secret_value() if mm7.password else None,
        connect_timeout_s=mm7.connect_timeout_s,
        read_timeout_s=mm7.read_timeout_s,
        concurrency=mm7.concurrency,
        rate_per_s=mm7.rate_per_s,
        max_attempts=1,
        backoff_s=mm7.backoff_s,
        backoff_cap_s=mm7.backoff_cap_s,
    )


@contextmanager
def mms_outbox(app: App, gateway: MmsGateway | None = None) -> Iterator[MmsOutbox]:
    """The MM7 outbox on the app's database, sending through ``gateway`` (default: MM7 per
    ``[mm7]``, closed on exit)."""
    from datetime import timedelta

    from mmsq.adapters.mm7_client import Mm7Client
    from mmsq.adapters.mms_edition_dir import EditionDirectory
    from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
    from mmsq.mms_content import OutboxContent
    from mmsq.mms_outbox import MmsOutbox, OutboxPolicy

    mm7 = app.settings.mm7
    policy = OutboxPolicy(
        max_attempts=mm7.max_attempts,
        backoff_s=mm7.backoff_s,
        backoff_cap_s=mm7.backoff_cap_s,
        lease_s=mm7.lease_s,
        max_in_doubt_resends=mm7.max_in_doubt_resends,
        expiry=timedelta(hours=mm7.expiry_hours),
        concurrency=mm7.concurrency,
    )
    content = OutboxContent(
        mm7.probe_text,
        mm7.probe_subject,
        EditionDirectory(mm7.editions_dir) if mm7.editions_dir else None,
    )
    client = Mm7Client(mm7_client_config(app.settings)) if gateway is None else None
    try:
        yield MmsOutbox(
            SqlMmsOutboxStore(app.store.engine),
            gateway or client,  # type: ignore[arg-type]
            content,
            app.classifier,
            app.clock,
            policy,
        )
    finally:
        if client is not None:
            client.close()


def build_api_services(
    settings: Settings,
    engine: Engine,
    *,
    outbox: ResendOutbox,
    recovery: RecoveryReader | None = None,
    clock: Clock | None = None,
    rate_limiter: RateLimits | None = None,
) -> ApiServices:
    """The agent API's services on ``engine`` (the event store's): subscriptions from the
    subscription store, deliveries and devices from the event store, verdict, recovery state
    and remedies from ``recovery`` (default: a RecoveryService on the same database), resends
    queued in ``outbox`` (the MM7 outbox; whoever built it dispatches it); per-token limits
    from ``rate_limiter`` (default: kept in this process). Raises RulesError."""
    from mmsq.adapters.sql_api import SqlApiStore
    from mmsq.adapters.sql_diagnosis_reads import diagnosis_read_scope
    from mmsq.adapters.sql_read_scope import read_engine
    from mmsq.agents import AgentService
    from mmsq.api.services import ApiServices
    from mmsq.complaint_cases import load_complaint_cases
    from mmsq.diagnosis import RESENDS_SHOWN, TRANSITIONS_SHOWN, DeviceProfiles, DiagnosisService
    from mmsq.rate_limit import RateLimiter
    from mmsq.resend import RecoverySuspension, ResendService
    from mmsq.subscription_lookup import StoreSubscriptions

    api = settings.api
    clock = clock or SystemClock()
    normaliser = MsisdnNormaliser(settings.ingest.default_region)
    store = SqlApiStore(engine)
    cases = load_complaint_cases(settings.rules.dir)
    # The per-request look-ups of one subscriber are single statements: on PostgreSQL they run
    # in autocommit (no BEGIN/ROLLBACK round trips); writes keep their transactions.
    reads = read_engine(engine)
    subscription_store = SqlSubscriptionStore(engine)
    subscriptions = StoreSubscriptions(subscription_store)
    looked_up = StoreSubscriptions(SqlSubscriptionStore(reads))
    if recovery is None:
        rules = load_scoring_rules(settings.rules.dir)
        rstore = SqlRecoveryStore(engine)
        recovery = RecoveryService(rstore, rstore, rules.recovery, clock, settings.ingest.timezone)
        read_store = SqlRecoveryStore(reads)
        diagnosed: RecoveryReader = RecoveryService(
            read_store, read_store, rules.recovery, clock, settings.ingest.timezone
        )
    else:
        diagnosed = recovery
    resends = ResendService(
        store=store,
        outbox=outbox,
        subscriptions=subscriptions,
        editions=store,
        suspension=RecoverySuspension(recovery),
        clock=clock,
    )
    return ApiServices(
        agents=AgentService(store, clock, api.auth_cache_seconds),
        resends=resends,
        diagnosis=DiagnosisService(
            subscriptions=looked_up,
            history=store,
            devices=DeviceProfiles(store, load_devices(settings.rules.dir)),
            recovery=diagnosed,
            resends=resends,
            cases=cases,
            deliveries_shown=api.deliveries_shown,
            transitions_shown=TRANSITIONS_SHOWN,
            reads=diagnosis_read_scope(
                engine, transitions=TRANSITIONS_SHOWN, resends=RESENDS_SHOWN
            ),
        ),
        audit=store,
        subscription_events=SubscriptionEventService(subscription_store, normaliser, clock),
        rate_limiter=rate_limiter
        or RateLimiter(api.rate_limit_per_minute, api.rate_limit_burst, clock),
        normaliser=normaliser,
        clock=clock,
        max_body_bytes=api.max_body_bytes,
        threads=api.threads,
    )


def api_rate_limits_path(settings: Settings) -> Path:
    """The file where the worker processes of ``mmsq api`` share their rate limits."""
    return settings.data_dir / "api-rate-limits.bin"


def api_server_app(settings: Settings | None = None, *, shared_limits: bool = True) -> FastAPI:
    """The agent API as ``mmsq api`` serves it (mounted under ``/v1``), with its own store,
    MM7 outbox (resends are queued; the daemon sends them) and services, all closed when the
    server stops.

    Called without arguments it is the factory each worker process of ``mmsq api --workers
    N`` runs: settings from ``$MMSQ_CONFIG`` and the environment, rate limits shared with the
    other workers through ``api_rate_limits_path``. Raises RulesError, SchemaNotCurrentError.
    """
    from mmsq.api import create_app, serve_app

    if settings is None:
        from mmsq.log import configure_logging
        from mmsq.settings import load_settings

        settings = load_settings()
        configure_logging(settings.log.level, settings.log.format)
    with ExitStack() as stack:
        app = build_app(settings)
        stack.callback(app.close)
        outbox = stack.enter_context(mms_outbox(app))
        limiter: RateLimits | None = None
        if shared_limits:
            from mmsq.adapters.shared_rate_limit import SharedRateLimiter

            shared = SharedRateLimiter(
                api_rate_limits_path(settings),
                settings.api.rate_limit_per_minute,
                settings.api.rate_limit_burst,
                app.clock,
            )
            stack.callback(shared.close)
            limiter = shared
        services = build_api_services(
            settings, app.store.engine, outbox=outbox, clock=app.clock, rate_limiter=limiter
        )
        return serve_app(create_app(services), on_close=stack.pop_all().close)


def score_job(app: App) -> Callable[[], dict[str, object]]:
    """The daemon's ``score`` job: one scoring run as of today (operator time zone); returns
    a small summary for the job log. Raises RulesError now (at start-up) when scoring.toml or
    devices.csv is invalid."""
    scoring = build_scoring(app)

    def run() -> dict[str, object]:
        doc = scoring.scoring.run().as_dict()
        return {
            "as_of": doc["as_of"],
            "subscribers": doc["subscribers"],
            "by_verdict": doc["by_verdict"],
            "by_transition": doc["by_transition"],
        }

    return run


# -- outreach ----------------------------------------------------------------------------------


@dataclass
class Outreach:
    """The outreach services, wired: planner, dispatcher (with its SMSC link) and the outbox."""

    store: SqlOutbox
    planner: OutreachPlanner
    dispatcher: Dispatcher
    gateway: SmppGateway

    def close(self) -> None:
        self.store.close()


def build_outreach(
    settings: Settings,
    *,
    metrics: OutreachMetrics | None = None,
    clock: Any = None,
    new_pin: Callable[[str], str] | None = None,
    check_schema: bool = True,
) -> Outreach:
    """Planner, dispatcher and SMPP link from the settings and rules; raises RulesError or
    SchemaNotCurrentError. Connects nothing until the dispatcher starts."""
    from mmsq.adapters.smpp_client import SmppConfig, SmppGateway
    from mmsq.adapters.sql_outbox import SqlOutbox
    from mmsq.contact_policy import load_contact_policy
    from mmsq.devices import load_device_profiles
    from mmsq.dispatch import DispatchConfig, Dispatcher
    from mmsq.ota_profiles import load_ota_profiles
    from mmsq.outreach_plan import OutreachPlanner

    rules_dir = settings.rules.dir
    rules = load_rules(rules_dir)
    policy = load_contact_policy(rules_dir)
    devices = load_device_profiles(rules_dir)
    profiles = load_ota_profiles(rules_dir)
    if check_schema:
        probe = SqlStore.from_url(settings.database_url)
        try:
            probe.check_schema()
        finally:
            probe.close()
    o = settings.outreach
    store = SqlOutbox.from_url(
        settings.database_url,
        max_attempts=o.max_attempts,
        retry_delay_s=o.retry_delay_s,
        receipt_id_base=settings.smpp.receipt_id_base,
    )
    clock = clock or SystemClock()
    s = settings.smpp
    gateway = SmppGateway(
        SmppConfig(
            host=s.host,
            port=s.port,
            system_id=s.system_id,
            password=s.password.get_secret_value(),
            system_type=s.system_type,
            bind_mode=s.bind_mode,
            window=s.window,
            throughput_per_s=s.throughput_per_s,
            source_addr=s.source_addr,
            source_addr_ton=s.source_addr_ton,
            source_addr_npi=s.source_addr_npi,
            enquire_link_s=s.enquire_link_s,
            response_timeout_s=s.response_timeout_s,
            reconnect_initial_s=s.reconnect_initial_s,
            reconnect_max_s=s.reconnect_max_s,
            throttle_pause_s=s.throttle_pause_s,
            msgqful_backoff_s=s.msgqful_backoff_s,
        ),
        metrics,
    )
    planner = OutreachPlanner(
        store,
        policy,
        devices,
        profiles,
        clock,
        expiry_hours=o.expiry_hours,
        batch_size=o.batch_size,
        new_pin=new_pin,
    )
    dispatcher = Dispatcher(
        store,
        gateway,
        policy,
        Classifier(rules.status_codes),
        clock,
        metrics,
        DispatchConfig(window=s.window, receipt_grace_s=o.receipt_grace_s),
    )
    return Outreach(store, planner, dispatcher, gateway)
