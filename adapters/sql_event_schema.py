"""Event storage schema (revision 0002): columnar blocks instead of one SQL row per event.

One SQL row per event caps SQLite near 85,000 events/s and makes reading a month of
per-subscriber aggregates (45 million rows) far too slow. So:

- raw events live in ``event_segments``: Arrow IPC blocks (zstd) of up to a few thousand
  events each, sorted by (msisdn, submitted_ts), one local day per segment, with the MSISDN
  range of the segment indexed for the per-subscriber look-up;
- idempotency is ``event_keys``: only the 64-bit event key, clustered by partition (UTC day
  of the done time; pending events by their submission day), so a day's inserts stay local;
- per-subscriber daily aggregates are ``daily_aggregate_blocks``, one block per (day,
  MSISDN partition), and the latest device per subscriber ``device_blocks``, one block per
  MSISDN partition; an ingest rewrites only the partitions it touches;
- per-(day, edition) counts and a latency histogram are ``edition_daily``, plain rows.

Read them through ``SqlStore`` (``recent_events``, ``daily_aggregates``, ``devices``,
``edition_stats``), never directly: the block layout is the store's business.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
)

from mmsq.adapters.sql_schema import metadata
from mmsq.aggregates import COUNT_COLUMNS, LATENCY_EDGES_S

__all__ = [
    "daily_aggregate_blocks",
    "device_blocks",
    "edition_daily",
    "event_keys",
    "event_segments",
]

event_segments = Table(
    "event_segments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", Date, nullable=False, comment="operator-local date of submission"),
    Column("msisdn_min", BigInteger, nullable=False, comment="E.164 digits as an integer"),
    Column("msisdn_max", BigInteger, nullable=False),
    Column("ts_min", BigInteger, nullable=False, comment="UTC epoch seconds of submission"),
    Column("ts_max", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
    Index("ix_event_segments_msisdn", "msisdn_min", "msisdn_max", "day", "id"),
    Index("ix_event_segments_ts", "ts_min"),
)

event_keys = Table(
    "event_keys",
    metadata,
    Column("part", Integer, primary_key=True, comment="UTC day of done time, -1-day if pending"),
    Column("event_key", BigInteger, primary_key=True, comment="hash of the report identity"),
    sqlite_with_rowid=False,
)

daily_aggregate_blocks = Table(
    "daily_aggregate_blocks",
    metadata,
    Column("day", Date, primary_key=True),
    Column("part", SmallInteger, primary_key=True, comment="msisdn modulo the partition count"),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
)

device_blocks = Table(
    "device_blocks",
    metadata,
    Column("part", SmallInteger, primary_key=True, comment="msisdn modulo the partition count"),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
)

edition_daily = Table(
    "edition_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("edition", String(80), primary_key=True, comment="empty when not reported"),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in COUNT_COLUMNS),
    Column("latency_n", BigInteger, nullable=False, server_default="0"),
    Column("latency_sum_s", BigInteger, nullable=False, server_default="0"),
    *(
        Column(f"lat_{b}", BigInteger, nullable=False, server_default="0")
        for b in range(len(LATENCY_EDGES_S) + 1)
    ),
)
