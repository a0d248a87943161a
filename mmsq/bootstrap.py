"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.report import ReportRun
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.settings import Settings

__all__ = ["App", "SystemClock", "build_app", "weekly_report_job"]


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
