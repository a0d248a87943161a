"""Database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Delivery events, daily aggregates and devices are in ``sql_event_schema`` (revision 0002).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "ingest_batches",
    "metadata",
    "quarantine",
    "unknown_codes",
]

metadata = MetaData()

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

# Schema additions owned by other features (they attach to `metadata` on import).
import mmsq.adapters.sql_daemon_schema  # noqa: E402, F401  (registers the daemon tables on metadata)

# Tables declared by feature modules share `metadata`; import them so it is complete.
from mmsq.adapters import sql_api_schema as _sql_api_schema  # noqa: E402, F401
from mmsq.adapters import sql_event_schema as _sql_event_schema  # noqa: E402, F401
from mmsq.adapters import sql_mms_outbox_schema as _sql_mms_outbox_schema  # noqa: E402, F401

# Feature tables share ``metadata``: importing their modules registers them.
from mmsq.adapters import sql_outreach_schema as _outreach_schema  # noqa: E402, F401
from mmsq.adapters import sql_recent_schema as _sql_recent_schema  # noqa: E402, F401

# Tables of other features, declared in their own modules on the shared metadata.
from mmsq.adapters import sql_scoring_schema as _sql_scoring_schema  # noqa: E402, F401
from mmsq.adapters import sql_subscriptions_schema as _subscriptions_schema  # noqa: E402, F401
