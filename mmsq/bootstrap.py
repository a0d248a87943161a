"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.report import ReportRun
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.settings import Settings

if TYPE_CHECKING:
    from mmsq.adapters.mm7_client import Mm7ClientConfig
    from mmsq.mms import MmsGateway
    from mmsq.mms_outbox import MmsOutbox

__all__ = [
    "App",
    "SystemClock",
    "build_app",
    "mm7_client_config",
    "mms_outbox",
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
    clock: SystemClock

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


def weekly_report_job(app: App) -> Callable[[], ReportRun]:
    """The weekly report as a job for the daemon's scheduler (``report.schedule``)."""
    from mmsq.adapters.smtp_mailer import SmtpConfig, SmtpMailer
    from mmsq.adapters.sql_report import SqlReportSource
    from mmsq.report import ReportConfig, send_weekly_report
    from mmsq.report_devices import load_device_table

    settings = app.settings

    def run() -> ReportRun:
        return send_weekly_report(
            SqlReportSource(app.store.engine),
            SmtpMailer(SmtpConfig.from_settings(settings.report)),
            ReportConfig.from_settings(settings),
            devices=load_device_table(settings.report.devices_file, settings.rules.dir),
            clock=app.clock,
        )

    return run


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
