"""Subscription tables (SQLAlchemy Core), on the shared ``metadata``.

``subscriptions`` holds one row per (MSISDN, product): mmsq's own status and, per source
system, the status in that source's newest snapshot with the snapshot's date. A source's status
counts only when its date is the source's newest snapshot date: a row absent from the newest
snapshot keeps an older date and so reads as "not in this source" without a rewrite.
Events, snapshots, repairs and runs are append-only logs (a reconcile run for a date replaces
the earlier run for that date).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from mmsq.adapters.sql_schema import metadata

__all__ = [
    "reconcile_runs",
    "subscription_events",
    "subscription_repairs",
    "subscription_snapshots",
    "subscriptions",
]

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("msisdn", String(20), primary_key=True, comment="E.164"),
    Column("product", String(64), primary_key=True),
    Column("status", String(16), comment="mmsq's status; empty until billing or an event sets it"),
    Column("status_ts", BigInteger, comment="UTC epoch seconds the status was set as of"),
    Column("since_ts", BigInteger, comment="UTC epoch seconds the status began"),
    Column("channel", String(32)),
    Column("boss_status", String(16)),
    Column("boss_as_of", Date),
    Column("misc_status", String(16)),
    Column("misc_as_of", Date),
    Column("platform_status", String(16)),
    Column("platform_as_of", Date),
    # Clustered on the key on SQLite: a snapshot upsert touches one B-tree, not two.
    sqlite_with_rowid=False,
)

subscription_snapshots = Table(
    "subscription_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("file", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscription_snapshots_source_as_of", "source", "as_of"),
)

subscription_events = Table(
    "subscription_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("product", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_ts", BigInteger, nullable=False, comment="UTC epoch seconds"),
    Column("source", String(16), nullable=False),
    Column("channel", String(32)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ux_subscription_events_event_id", "event_id", unique=True),
    Index("ix_subscription_events_msisdn", "msisdn", "product"),
)

subscription_repairs = Table(
    "subscription_repairs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("class", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("product", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("platform_as_of", Date, nullable=False, comment="platform snapshot it repaired"),
    Index("ix_subscription_repairs_platform_as_of", "platform_as_of"),
)

reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("compared", BigInteger, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("stale", JSON, nullable=False),
    Column("snapshots", JSON, nullable=False),
    Column("repairs_proposed", Integer, nullable=False),
    Column("repairs_applied", Integer, nullable=False),
    Index("ux_reconcile_runs_as_of", "as_of", unique=True),
)
