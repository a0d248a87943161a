"""The per-subscriber recent-events index (revision ``recent_index``).

``recent_event_blocks`` keeps, per MSISDN partition, copies of each subscriber's newest
events so that ``SqlStore.recent_events`` (the diagnosis look-up) reads a few small blocks of
one partition instead of one event segment per ingested chunk and day. Each ingest session
appends one generation per partition it touches; generations older than the index's horizon
are deleted. The block format is in ``mmsq.adapters.recent_blocks``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Table

from mmsq.adapters.sql_schema import metadata

__all__ = ["recent_event_blocks"]

recent_event_blocks = Table(
    "recent_event_blocks",
    metadata,
    Column("part", Integer, primary_key=True, comment="msisdn modulo RECENT_PARTS"),
    Column("gen", BigInteger, primary_key=True, comment="generation: higher is newer"),
    Column("rows", Integer, nullable=False),
    Column("ts_min", BigInteger, nullable=False, comment="oldest submission, UTC epoch seconds"),
    Column("ts_max", BigInteger, nullable=False, comment="newest submission, UTC epoch seconds"),
    Column("raw_size", Integer, nullable=False, comment="size of the IPC stream uncompressed"),
    Column("data", LargeBinary, nullable=False, comment="Arrow IPC stream, lz4 as a whole"),
    Index("ix_recent_event_blocks_ts_max", "ts_max"),
)
