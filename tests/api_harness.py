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
import uvicorn
from fastapi import FastAPI

from mmsq.adapters.sql_api import SqlApiStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.agents import Role
from mmsq.api import ApiServices, create_app
from mmsq.bootstrap import build_api_services
from mmsq.ingest import EVENT_COLUMNS
from mmsq.settings import ApiSettings, Settings
from mmsq.subscription_lookup import (
    SUSPENDED_BY_MMSQ,
    InMemorySubscriptions,
    SubscriptionStatus,
    SubscriptionView,
)
from tests.api_fakes import FixedClock

__all__ = ["ACTIVE", "ApiWorld", "api_world", "serve"]

ACTIVE = "+8613800138000"
MMSQ_SUSPENDED = "+8613800138001"
UNSUBSCRIBED = "+8613800138002"
OPERATOR_SUSPENDED = "+8613800138003"
CANCELLED = "+8613800138004"
NO_DELIVERIES = "+8613800138005"


def subscriptions() -> InMemorySubscriptions:
    since = datetime(2026, 10, 2, tzinfo=UTC)
    s = SubscriptionStatus
    return InMemorySubscriptions(
        [
            SubscriptionView(ACTIVE, "ah-daily", s.ACTIVE),
            SubscriptionView(MMSQ_SUSPENDED, "ah-daily", s.SUSPENDED, SUSPENDED_BY_MMSQ),
            SubscriptionView(UNSUBSCRIBED, "ah-daily", s.UNSUBSCRIBED, since=since),
            SubscriptionView(OPERATOR_SUSPENDED, "ah-daily", s.SUSPENDED, "billing"),
            SubscriptionView(CANCELLED, "ah-daily", s.CANCELLED),
            SubscriptionView(NO_DELIVERIES, "ah-daily", s.ACTIVE),
        ]
    )


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
    app: FastAPI
    services: ApiServices
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
        settings = Settings(
            api=ApiSettings(
                rate_limit_per_minute=per_minute, rate_limit_burst=burst, max_body_bytes=max_body
            )
        )
        services = build_api_services(
            settings, sql.engine, subscriptions=subscriptions(), clock=clock
        )
        tokens = {}
        for role in Role:
            _, tokens[role.value] = services.agents.add(f"{role.value}-1", role)
        _, tokens["agent2"] = services.agents.add("agent-2", Role.AGENT)
        app = create_app(services)
        try:
            yield ApiWorld(app, services, SqlApiStore(sql.engine), sql, clock, tokens)
        finally:
            app.state.audit_writer.close()
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
