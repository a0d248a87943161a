"""Recent-events index and a finer latency histogram.

- ``recent_event_blocks``: the last days of events by MSISDN partition, for the diagnosis
  look-up. Left empty here: revision ``recent_slices`` replaces it with the sliced index and
  builds that from the event segments (this revision used to build it with the store's
  writer, whose format has since moved on).
- ``edition_daily``: the latency histogram goes from 14 to 87 bins (``lat_0`` ... ``lat_86``
  over ``mmsq.aggregates.LATENCY_EDGES_S``). Every old edge is a new edge, so each old bin is
  a run of new bins; its count is spread over them in proportion to their width (what a
  percentile interpolated in the old bin assumed). Days ingested before this revision keep
  the old resolution in effect; downgrading sums the new bins back exactly.

Frozen: the table and both sets of edges are spelled out here.

Revision ID: recent_index
Revises: outreach
Create Date: 2026-11-24
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "recent_index"
down_revision = "outreach"
branch_labels = None
depends_on = None

_OLD_EDGES = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
_NEW_EDGES = (
    *range(1, 10),
    *(10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 40, 45, 50, 55),
    *(60, 66, 72, 80, 90, 100, 110, 120, 135, 150, 165, 180, 200, 225, 250, 280, 300),
    *(330, 360, 400, 450, 500, 560, 600, 660, 720, 800, 900, 1000, 1100, 1200, 1350),
    *(1500, 1650, 1800, 2000, 2250, 2500, 2800, 3000, 3300, 3600),
    *(4200, 4800, 5400, 6300, 7200, 9000, 10800, 12600, 14400, 18000, 21600, 28800),
    *(36000, 43200, 57600, 86400),
)
_OLD_BINS = len(_OLD_EDGES) + 1
_NEW_BINS = len(_NEW_EDGES) + 1


def _new_bins_of(old_bin: int) -> list[int]:
    """The new bins that make up an old one."""
    if old_bin == _OLD_BINS - 1:
        return [_NEW_BINS - 1]
    lo = _OLD_EDGES[old_bin - 1] if old_bin else 0
    hi = _OLD_EDGES[old_bin]
    return [j for j, edge in enumerate(_NEW_EDGES) if lo < edge <= hi]


def _spread(count: int, bins: list[int]) -> dict[int, int]:
    """``count`` over ``bins`` in proportion to their width, in integers (largest remainder)."""
    lows = [(_NEW_EDGES[j - 1] if j else 0) for j in bins]
    widths = np.asarray(
        [
            (_NEW_EDGES[j] if j < len(_NEW_EDGES) else lows[i] + 1) - lows[i]
            for i, j in enumerate(bins)
        ],
        dtype=np.float64,
    )
    exact = count * widths / widths.sum()
    whole = np.floor(exact).astype(np.int64)
    short = count - int(whole.sum())
    for i in np.argsort(-(exact - whole), kind="stable")[:short]:
        whole[i] += 1
    return dict(zip(bins, whole.tolist(), strict=True))


def _edition_table(bins: int) -> sa.TableClause:
    return sa.table(
        "edition_daily",
        sa.column("day"),
        sa.column("edition"),
        *(sa.column(f"lat_{b}") for b in range(bins)),
    )


def upgrade() -> None:
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
    for b in range(_OLD_BINS, _NEW_BINS):
        op.add_column(
            "edition_daily",
            sa.Column(f"lat_{b}", sa.BigInteger, nullable=False, server_default="0"),
        )
    conn = op.get_bind()
    _rebin(conn)


def _rebin(conn: sa.Connection) -> None:
    old = _edition_table(_OLD_BINS)
    new = _edition_table(_NEW_BINS)
    for row in conn.execute(sa.select(old)).all():
        values = dict.fromkeys(range(_NEW_BINS), 0)
        for b in range(_OLD_BINS):
            count = int(row._mapping[f"lat_{b}"])
            if count:
                for j, n in _spread(count, _new_bins_of(b)).items():
                    values[j] += n
        conn.execute(
            new.update()
            .where(new.c.day == row.day, new.c.edition == row.edition)
            .values({f"lat_{j}": n for j, n in values.items()})
        )


def downgrade() -> None:
    new = _edition_table(_NEW_BINS)
    old = _edition_table(_OLD_BINS)
    conn = op.get_bind()
    for row in conn.execute(sa.select(new)).all():
        values = {
            f"lat_{b}": sum(int(row._mapping[f"lat_{j}"]) for j in _new_bins_of(b))
            for b in range(_OLD_BINS)
        }
        conn.execute(
            old.update().where(old.c.day == row.day, old.c.edition == row.edition).values(values)
        )
    with op.batch_alter_table("edition_daily") as batch:
        for b in range(_OLD_BINS, _NEW_BINS):
            batch.drop_column(f"lat_{b}")
    op.drop_index("ix_recent_event_blocks_ts_max", "recent_event_blocks")
    op.drop_table("recent_event_blocks")
