"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.blacklist import BlacklistService
from mmsq.classify import Classifier
from mmsq.devices import DeviceCatalogue, load_devices
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.recovery import RecoveryService
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.scoring_ports import SubscriptionStatusLookup
from mmsq.scoring_rules import ScoringRules, load_scoring_rules
from mmsq.scoring_run import ScoringService
from mmsq.settings import Settings

__all__ = ["App", "ScoringApp", "SystemClock", "build_app", "build_scoring"]


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
    """Raises RulesError when scoring.toml or devices.csv is invalid."""
    rules = load_scoring_rules(app.settings.rules.dir)
    devices = load_devices(app.settings.rules.dir)
    # Two threads fold the window on SQLite: the driver releases the GIL while it works.
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
