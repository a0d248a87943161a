"""Shared set-up for the outreach tests: an outbox on a fresh database, a contact policy that
allows sending at any hour, and helpers to plan contacts and run the dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from mmsq.adapters.smpp_client import SmppConfig, SmppGateway
from mmsq.adapters.sql_outbox import SqlOutbox
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.contact_policy import ContactPolicy, load_contact_policy
from mmsq.devices import load_device_profiles
from mmsq.dispatch import DispatchConfig, Dispatcher
from mmsq.ota_profiles import load_ota_profiles
from mmsq.outbox import CountingMetrics
from mmsq.outreach_plan import OutreachPlanner
from mmsq.rules_loader import load_rules
from mmsq.simulators.smsc import SmscSimulator


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


def open_policy(**update: object) -> ContactPolicy:
    """The shipped policy without quiet hours, blackouts or holdout (tests run at any hour)."""
    base = load_contact_policy()
    return base.model_copy(
        update={
            "quiet_hours": base.quiet_hours.model_copy(update={"start": "00:00", "end": "00:00"}),
            "blackouts": (),
            "holdout": base.holdout.model_copy(update={"share": 0.0}),
            **update,
        }
    )


def new_outbox(db_url: str, receipt_id_base: str = "same") -> SqlOutbox:
    store = SqlStore.from_url(db_url)
    try:
        store.upgrade()
    finally:
        store.close()
    return SqlOutbox.from_url(db_url, retry_delay_s=0.0, receipt_id_base=receipt_id_base)


def planner(
    store: SqlOutbox,
    policy: ContactPolicy | None = None,
    clock: object | None = None,
    new_pin: Callable[[str], str] | None = None,
    expiry_hours: float = 24.0,
) -> OutreachPlanner:
    return OutreachPlanner(
        store,
        policy or open_policy(),
        load_device_profiles(),
        load_ota_profiles(),
        clock or WallClock(),  # type: ignore[arg-type]
        expiry_hours=expiry_hours,
        new_pin=new_pin,
    )


def candidates(
    msisdns: list[str], verdict: str = "terminal_capacity", **cols: object
) -> pd.DataFrame:
    return pd.DataFrame({"msisdn": msisdns, "verdict": verdict, "delivered": 5, **cols})


class RecordingMetrics(CountingMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.state_history: list[str] = []

    def bind_state(self, bind: str, state: str) -> None:
        super().bind_state(bind, state)
        self.state_history.append(state)


def smpp_config(smsc: SmscSimulator, **kw: object) -> SmppConfig:
    base: dict[str, object] = {
        "host": smsc.host,
        "port": smsc.port,
        "system_id": smsc.config.system_id,
        "password": smsc.config.password,
        "window": 10,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "throttle_pause_s": 0.2,
        "msgqful_backoff_s": 0.05,
        "msgqful_backoff_max_s": 0.2,
        "response_timeout_s": 5.0,
    }
    base.update(kw)
    return SmppConfig(**base)  # type: ignore[arg-type]


def dispatcher(
    store: SqlOutbox,
    smsc: SmscSimulator,
    metrics: CountingMetrics | None = None,
    policy: ContactPolicy | None = None,
    receipt_grace_s: float = 600.0,
    **smpp: object,
) -> Dispatcher:
    cfg = smpp_config(smsc, **smpp)
    gateway = SmppGateway(cfg, metrics)
    return Dispatcher(
        store,
        gateway,
        policy or open_policy(),
        Classifier(load_rules().status_codes),
        WallClock(),
        metrics,
        DispatchConfig(window=cfg.window, receipt_grace_s=receipt_grace_s, housekeeping_s=0.2),
    )
