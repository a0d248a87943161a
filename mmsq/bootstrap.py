"""The composition root: builds settings, rules, adapters and services. Nothing else wires."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules
from mmsq.rules_model import RuleSet
from mmsq.settings import Settings

if TYPE_CHECKING:
    from mmsq.adapters.smpp_client import SmppGateway
    from mmsq.adapters.sql_outbox import SqlOutbox
    from mmsq.dispatch import Dispatcher
    from mmsq.outbox import OutreachMetrics
    from mmsq.outreach_plan import OutreachPlanner

__all__ = ["App", "Outreach", "SystemClock", "build_app", "build_outreach"]


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
    from mmsq.device_profiles import load_device_profiles
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
