"""The per-subscriber recent-events index (revision ``recent_slices``).

``recent_event_slices`` keeps, per MSISDN partition, copies of each subscriber's newest
events so that ``SqlStore.recent_events`` (the diagnosis look-up) reads one small slice of a
few blocks of one partition instead of one event segment per ingested chunk and day. Each
ingest session appends one generation (a block, stored as slices) per partition it touches;
generations older than the index's horizon are deleted. The format is in
``mmsq.adapters.recent_blocks``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Table

from mmsq.adapters.sql_schema import metadata

__all__ = ["recent_event_slices"]

recent_event_slices = Table(
    "recent_event_slices",
    metadata,
    Column("part", Integer, primary_key=True, comment="msisdn modulo RECENT_PARTS"),
    Column("gen", BigInteger, primary_key=True, comment="generation: higher is newer"),
    Column("msisdn_min", BigInteger, primary_key=True, comment="the slice's first MSISDN (digits)"),
    Column("rows", Integer, nullable=False, comment="events in the slice"),
    Column(
        "ts_min", BigInteger, nullable=False, comment="the block's oldest submission, UTC epoch s"
    ),
    Column(
        "ts_max", BigInteger, nullable=False, comment="the block's newest submission, UTC epoch s"
    ),
    Column("raw_size", Integer, nullable=False, comment="size of the IPC message uncompressed"),
    Column("data", LargeBinary, nullable=False, comment="Arrow IPC record batch message, lz4"),
    Index("ix_recent_event_slices_ts_max", "ts_max"),
)
