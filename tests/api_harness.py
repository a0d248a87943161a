"""Builds the agent API over a real database (SQLite or PostgreSQL) for integration tests,
and serves it with a real uvicorn on 127.0.0.1 (port 0) when a test needs sockets."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from mmsq.adapters.sql_api import SqlApiStore
from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.agents import Role
from mmsq.api import ApiServices, create_app, serve_app
from mmsq.bootstrap import build_api_services
from mmsq.classify import Classifier
from mmsq.ingest import EVENT_COLUMNS
from mmsq.mms import MmsContent, MmsPart, MmsSubmission, SubmitOutcome, SubmitResult
from mmsq.mms_content import OutboxContent
from mmsq.mms_outbox import MmsOutbox, OutboxPolicy
from mmsq.msisdn import MsisdnNormaliser
from mmsq.ports import Clock
from mmsq.recovery import STATE_COLUMNS, TRANSITION_COLUMNS
from mmsq.rules_loader import load_rules
from mmsq.settings import ApiSettings, Settings
from mmsq.subscription_events import SubscriptionEventService
from mmsq.subscriptions import EventKind, Source, SubscriptionEvent
from tests.api_fakes import FixedClock

__all__ = ["ACTIVE", "ApiWorld", "api_world", "serve"]

ACTIVE = "+8613800138000"
MMSQ_SUSPENDED = "+8613800138001"
UNSUBSCRIBED = "+8613800138002"
OPERATOR_SUSPENDED = "+8613800138003"
CANCELLED = "+8613800138004"
NO_DELIVERIES = "+8613800138005"
BLACKLISTED = "+8613800138006"


def subscribe_all(engine: sa.Engine, clock: FixedClock) -> None:
    """The subscriptions the tests expect, as the real-time feed would set them."""
    service = SubscriptionEventService(SqlSubscriptionStore(engine), MsisdnNormaliser("CN"), clock)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    k = EventKind
    plan = [
        (ACTIVE, k.SUBSCRIBE, start),
        (MMSQ_SUSPENDED, k.SUBSCRIBE, start),
        (UNSUBSCRIBED, k.SUBSCRIBE, start),
        (UNSUBSCRIBED, k.UNSUBSCRIBE, datetime(2026, 10, 2, tzinfo=UTC)),
        (OPERATOR_SUSPENDED, k.SUBSCRIBE, start),
        (OPERATOR_SUSPENDED, k.SUSPEND, datetime(2026, 11, 1, tzinfo=UTC)),
        (CANCELLED, k.CANCEL, start),
        (NO_DELIVERIES, k.SUBSCRIBE, start),
        (BLACKLISTED, k.SUBSCRIBE, start),
    ]
    for i, (msisdn, kind, at) in enumerate(plan):
        service.apply_event(
            SubscriptionEvent(
                event_id=f"setup-{i}",
                msisdn=msisdn,
                product="ah-daily",
                kind=kind,
                event_time=at,
                source=Source.BOSS,
            )
        )


def suspend_by_mmsq(engine: sa.Engine, clock: Clock, msisdn: str) -> None:
    """Put a subscriber in recovery state ``suspended`` (as a scoring run would)."""
    at = pd.Timestamp(clock.now() - timedelta(days=2))
    day = (clock.now() - timedelta(days=2)).date().isoformat()
    reason = (
        "terminal_misconfigured (score 0.91): 6 failed days in a row since 2026-11-15; "
        "notification delivered, MM never fetched"
    )
    steps = [
        ("active", "flagged", "verdict", "terminal_misconfigured"),
        ("flagged", "suspended", "suspend_threshold_reached", "6 failed days"),
    ]
    transitions = pd.DataFrame(
        [
            {
                "msisdn": msisdn,
                "at": at,
                "from_state": a,
                "to_state": b,
                "event": e,
                "cause": c,
                "evidence": reason,
                "run_id": "run-1",
            }
            for a, b, e, c in steps
        ],
        columns=list(TRANSITION_COLUMNS),
    )
    state = pd.DataFrame(
        [
            {
                "msisdn": msisdn,
                "state": "suspended",
                "verdict": "terminal_misconfigured",
                "reason": reason,
                "since": at,
                "since_day": day,
                "suspended_day": day,
                "probes_sent": 0,
                "last_probe_at": None,
            }
        ],
        columns=list(STATE_COLUMNS),
    )
    SqlRecoveryStore(engine).apply_transitions(transitions, state)


class AcceptingMmsc:
    """A gateway standing in for the MMSC: accepts every SubmitReq with a fresh MessageID."""

    def __init__(self) -> None:
        self.submitted: list[MmsSubmission] = []

    def submit(self, submission: MmsSubmission) -> SubmitResult:
        self.submitted.append(submission)
        return SubmitResult(
            SubmitOutcome.ACCEPTED, 1000, "Success", f"MID{len(self.submitted):06d}"
        )


class AnyEdition:
    """Every edition exists, as one line of text."""

    def edition(self, edition: str, content_ref: str | None) -> MmsContent:
        part = MmsPart("text.txt", "text/plain; charset=utf-8", edition.encode(), "text.txt")
        return MmsContent(edition, "<smil/>", (part,))


def _events(clock: FixedClock) -> pd.DataFrame:
    """Deliveries for ACTIVE and MMSQ_SUSPENDED: one delivered, then two not fetched."""
    rows = []
    base = int(clock.now().timestamp())
    plan = [
        (ACTIVE, 3, "delivered", "Retrieved"),
        (ACTIVE, 2, "not_fetched", "Expired"),
        (ACTIVE, 1, "not_fetched", "Expired"),
        (MMSQ_SUSPENDED, 1, "not_fetched", "Expired"),
    ]
    for i, (msisdn, days_ago, cause, code) in enumerate(plan):
        ts = base - days_ago * 86400
        rows.append(
            {
                "event_key": 1000 + i,
                "msisdn": msisdn,
                "message_id": f"m{i}",
                "edition": f"ah-daily-2026112{3 - days_ago}-am",
                "status_source": "mm7",
                "status_code": code,
                "error_code": None,
                "cause": cause,
                "final": True,
                "notify_ok": 1,
                "imei": "8617120312345678",
                "region": "hefei",
                "submitted_ts": ts,
                "done_ts": ts + 60,
                "day": (clock.now() - timedelta(days=days_ago)).date(),
            }
        )
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


@dataclass
class ApiWorld:
    app: FastAPI  # served as mmsq api serves it: the API mounted under /v1
    api: FastAPI  # the API itself (paths relative to /v1)
    services: ApiServices
    outbox: MmsOutbox
    mmsc: AcceptingMmsc
    store: SqlApiStore
    sql: SqlStore
    clock: FixedClock
    tokens: dict[str, str]

    def auth(self, who: str = "agent") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@contextlib.contextmanager
def api_world(
    db_url: str, *, per_minute: int = 10_000, burst: int = 10_000, max_body: int = 4096
) -> Iterator[ApiWorld]:
    sql = SqlStore.from_url(db_url)
    try:
        sql.upgrade()
        clock = FixedClock()
        sql.ingest_events(_events(clock))
        subscribe_all(sql.engine, clock)
        suspend_by_mmsq(sql.engine, clock, MMSQ_SUSPENDED)
        settings = Settings(
            api=ApiSettings(
                rate_limit_per_minute=per_minute, rate_limit_burst=burst, max_body_bytes=max_body
            )
        )
        mmsc = AcceptingMmsc()
        outbox = MmsOutbox(
            SqlMmsOutboxStore(sql.engine),
            mmsc,
            OutboxContent("probe", "probe", AnyEdition()),
            Classifier(load_rules(None).status_codes),
            clock,
            OutboxPolicy(concurrency=1),
        )
        services = build_api_services(settings, sql.engine, outbox=outbox, clock=clock)
        tokens = {}
        for role in Role:
            _, tokens[role.value] = services.agents.add(f"{role.value}-1", role)
        _, tokens["agent2"] = services.agents.add("agent-2", Role.AGENT)
        api = create_app(services)
        try:
            yield ApiWorld(
                serve_app(api),
                api,
                services,
                outbox,
                mmsc,
                SqlApiStore(sql.engine),
                sql,
                clock,
                tokens,
            )
        finally:
            api.state.audit_writer.close()
    finally:
        sql.close()


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (ephemeral port) in a thread; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
