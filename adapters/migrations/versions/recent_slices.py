"""Recent-events index stored as slices: ``recent_event_slices`` replaces ``recent_event_blocks``.

A diagnosis read the newest blocks of its partition whole (about 24 KB each at 1.5M
subscribers, five of them) to keep the few rows of one subscriber. Blocks are now cut into
slices of whole subscribers (about 128 events each), keyed by their first MSISDN; a look-up
reads one slice of each block. A slice is an Arrow IPC record-batch message in plain columns
(readable without its stream's schema and dictionaries), lz4 as a whole.

The new index is built from the event segments of the last stored days with the store's own
writer (the format it must match), as revision ``recent_index`` first built the old one
(minutes for a province's fortnight). Downgrading leaves the old index empty: look-ups then
read the segments, correct and slower, until the next ingest session adds a generation.

On PostgreSQL the slices are stored uncompressed out of line (``STORAGE EXTERNAL``): they
are compressed already, and the server need not try again.

Revision ID: recent_slices
Revises: device_parts
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "recent_slices"
down_revision = "device_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_recent_event_blocks_ts_max", "recent_event_blocks")
    op.drop_table("recent_event_blocks")
    op.create_table(
        "recent_event_slices",
        sa.Column("part", sa.Integer, primary_key=True, comment="msisdn modulo RECENT_PARTS"),
        sa.Column("gen", sa.BigInteger, primary_key=True, comment="generation: higher is newer"),
        sa.Column(
            "msisdn_min",
            sa.BigInteger,
            primary_key=True,
            comment="the slice's first MSISDN (digits)",
        ),
        sa.Column("rows", sa.Integer, nullable=False, comment="events in the slice"),
        sa.Column(
            "ts_min",
            sa.BigInteger,
            nullable=False,
            comment="the block's oldest submission, UTC epoch s",
        ),
        sa.Column(
            "ts_max",
            sa.BigInteger,
            nullable=False,
            comment="the block's newest submission, UTC epoch s",
        ),
        sa.Column(
            "raw_size",
            sa.Integer,
            nullable=False,
            comment="size of the IPC message uncompressed",
        ),
        sa.Column(
            "data", sa.LargeBinary, nullable=False, comment="Arrow IPC record batch message, lz4"
        ),
    )
    op.create_index("ix_recent_event_slices_ts_max", "recent_event_slices", ["ts_max"])
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("ALTER TABLE recent_event_slices ALTER COLUMN data SET STORAGE EXTERNAL")
    _build_recent(conn)


def _build_recent(conn: sa.Connection) -> None:
    from mmsq.adapters.event_blocks import decode
    from mmsq.adapters.recent_blocks import RECENT_DAYS, RecentIndexWriter

    segments = sa.table("event_segments", sa.column("id"), sa.column("day"), sa.column("data"))
    writer = RecentIndexWriter(conn)
    days = [
        d for (d,) in conn.execute(sa.select(segments.c.day).distinct().order_by(segments.c.day))
    ]
    for day in days[-(RECENT_DAYS + 2) :]:  # older days would be past the horizon
        ids = conn.execute(
            sa.select(segments.c.id).where(segments.c.day == day).order_by(segments.c.id)
        ).all()
        for (seg_id,) in ids:
            data = conn.execute(
                sa.select(segments.c.data).where(segments.c.id == seg_id)
            ).scalar_one()
            writer.add(decode(data))
        writer.flush()


def downgrade() -> None:
    op.drop_index("ix_recent_event_slices_ts_max", "recent_event_slices")
    op.drop_table("recent_event_slices")
    op.create_table(
        "recent_event_blocks",
        sa.Column("part", sa.Integer, primary_key=True, comment="msisdn modulo RECENT_PARTS"),
        sa.Column("gen", sa.BigInteger, primary_key=True, comment="generation: higher is newer"),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column(
            "ts_min", sa.BigInteger, nullable=False, comment="oldest submission, UTC epoch seconds"
        ),
        sa.Column(
            "ts_max", sa.BigInteger, nullable=False, comment="newest submission, UTC epoch seconds"
        ),
        sa.Column(
            "raw_size", sa.Integer, nullable=False, comment="size of the IPC stream uncompressed"
        ),
        sa.Column(
            "data", sa.LargeBinary, nullable=False, comment="Arrow IPC stream, lz4 as a whole"
        ),
    )
    op.create_index("ix_recent_event_blocks_ts_max", "recent_event_blocks", ["ts_max"])
