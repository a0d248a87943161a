"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.diagnosis import DiagnosisSource
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock
from mmsq.resend import DeliverySuspension, EditionSource
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.settings import Settings
from mmsq.subscription_lookup import SubscriptionLookup

if TYPE_CHECKING:
    from mmsq.api.services import ApiServices

__all__ = ["App", "SystemClock", "build_api_services", "build_app"]


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


def build_api_services(
    settings: Settings,
    engine: Engine,
    *,
    subscriptions: SubscriptionLookup | None = None,
    diagnosis_source: DiagnosisSource | None = None,
    editions: EditionSource | None = None,
    suspension: DeliverySuspension | None = None,
    clock: Clock | None = None,
) -> ApiServices:
    """The agent API's services on ``engine`` (the event store's). Pieces built elsewhere
    (the subscription store, scoring) are passed in; each defaults to what exists today:
    the ``[api] subscriptions_csv`` file (or no subscriptions at all), a verdict from the delivery
    history, the latest edition sent to the subscriber. Raises RulesError."""
    from mmsq.adapters.sql_api import SqlApiStore
    from mmsq.adapters.subscriptions_csv import load_subscriptions_csv
    from mmsq.agents import AgentService
    from mmsq.api.services import ApiServices
    from mmsq.complaint_cases import load_complaint_cases
    from mmsq.diagnosis import AssessmentSuspension, DiagnosisService, HistoryDiagnosisSource
    from mmsq.rate_limit import RateLimiter
    from mmsq.resend import ResendService
    from mmsq.subscription_lookup import InMemorySubscriptions

    api = settings.api
    clock = clock or SystemClock()
    normaliser = MsisdnNormaliser(settings.ingest.default_region)
    store = SqlApiStore(engine)
    cases = load_complaint_cases(settings.rules.dir)
    if subscriptions is None:
        if api.subscriptions_csv is not None:
            subscriptions = load_subscriptions_csv(api.subscriptions_csv, normaliser).lookup
        else:
            subscriptions = InMemorySubscriptions()
    source = diagnosis_source or HistoryDiagnosisSource(store)
    return ApiServices(
        agents=AgentService(store, clock, api.auth_cache_seconds),
        resends=ResendService(
            store=store,
            subscriptions=subscriptions,
            editions=editions or store,
            suspension=suspension or AssessmentSuspension(source, store),
            clock=clock,
        ),
        diagnosis=DiagnosisService(
            subscriptions=subscriptions,
            history=store,
            source=source,
            resends=store,
            cases=cases,
            deliveries_shown=api.deliveries_shown,
        ),
        audit=store,
        rate_limiter=RateLimiter(api.rate_limit_per_minute, api.rate_limit_burst, clock),
        normaliser=normaliser,
        clock=clock,
        max_body_bytes=api.max_body_bytes,
        threads=api.threads,
    )
