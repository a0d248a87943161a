"""Database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from mmsq.ingest import AGGREGATE_COUNTS

__all__ = [
    "daily_aggregates",
    "delivery_events",
    "ingest_batches",
    "metadata",
    "quarantine",
    "subscriber_devices",
    "unknown_codes",
]

metadata = MetaData()

delivery_events = Table(
    "delivery_events",
    metadata,
    # Append-only on SQLite (the id is the rowid); the event key lives in a unique index.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("event_key", BigInteger, nullable=False, comment="hash of the report identity"),
    Column("msisdn", String(20), nullable=False),
    Column("message_id", String(80), nullable=False),
    Column("edition", String(80)),
    Column("status_source", String(16), nullable=False),
    Column("status_code", String(40), nullable=False),
    Column("error_code", String(40)),
    Column("cause", String(24), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("notify_ok", SmallInteger),
    Column("imei", String(16)),
    Column("region", String(64)),
    Column("submitted_ts", BigInteger, nullable=False, comment="UTC epoch seconds"),
    Column("done_ts", BigInteger, comment="UTC epoch seconds"),
    Column("day", Date, nullable=False, comment="operator-local date of submission"),
    Index("ux_delivery_events_event_key", "event_key", unique=True),
    Index("ix_delivery_events_msisdn_ts", "msisdn", "submitted_ts"),
)

daily_aggregates = Table(
    "daily_aggregates",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("day", Date, primary_key=True),
    *(Column(name, Integer, nullable=False, server_default="0") for name in AGGREGATE_COUNTS),
    Column("last_ts", BigInteger, nullable=False),
    # Clustered on (msisdn, day) on SQLite: one B-tree to update per upsert, not two.
    sqlite_with_rowid=False,
)

subscriber_devices = Table(
    "subscriber_devices",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("imei", String(16), nullable=False),
    Column("tac", String(8), nullable=False),
    Column("seen_ts", BigInteger, nullable=False, comment="when this IMEI was first seen"),
    sqlite_with_rowid=False,
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
)

unknown_codes = Table(
    "unknown_codes",
    metadata,
    Column("namespace", String(32), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("summary", JSON),
)

# Feature tables share ``metadata``: importing their modules registers them.
from mmsq.adapters import sql_outreach_schema as _outreach_schema  # noqa: E402, F401
