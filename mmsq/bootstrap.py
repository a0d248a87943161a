"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mmsq.adapters.reconcile_files import SendListDropFolder
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.reconcile import ReconcileService
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.settings import Settings
from mmsq.subscription_events import SubscriptionEventService
from mmsq.subscription_import import SnapshotImportService

__all__ = ["App", "SubscriptionServices", "SystemClock", "build_app", "build_subscriptions"]


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
