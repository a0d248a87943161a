"""Columnar event storage: event segments, key index, aggregate and device blocks, edition days.

Replaces ``delivery_events``, ``daily_aggregates`` and ``subscriber_devices`` (one SQL row per
event, subscriber-day and subscriber) with Arrow IPC blocks, and adds per-(day, edition)
counts. Existing rows are converted, then the old tables are dropped. Per-edition counts are
rebuilt from the raw events still held (older days have none; no latency histogram).

Frozen: the block layout (Arrow schemas, 64 MSISDN partitions, key partitions) is spelled out
here rather than imported, so later changes to the store go into new revisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CAUSES = (
    "delivered",
    "pending",
    "not_fetched",
    "terminal_capacity",
    "terminal_incapable",
    "unreachable",
    "subscriber_invalid",
    "subscriber_suspended",
    "policy_blocked",
    "content_rejected",
    "network_transient",
    "platform_error",
    "unknown",
)
_COUNTS = ("attempts", "final", "delivered", "notified_not_fetched", *(f"c_{c}" for c in _CAUSES))
_LAT_BINS = 14
_PARTS = 64
_SEGMENT_ROWS = 4096
_EVENT_SCHEMA = pa.schema(
    [
        ("event_key", pa.int64()),
        ("msisdn", pa.int64()),
        ("message_id", pa.string()),
        ("edition", pa.string()),
        ("status_source", pa.string()),
        ("status_code", pa.string()),
        ("error_code", pa.string()),
        ("cause", pa.string()),
        ("final", pa.bool_()),
        ("notify_ok", pa.int8()),
        ("imei", pa.string()),
        ("region", pa.string()),
        ("submitted_ts", pa.int64()),
        ("done_ts", pa.int64()),
        ("day", pa.date32()),
    ]
)


def _encode(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=opts) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _digits(msisdn: pd.Series) -> np.ndarray:
    return msisdn.astype(str).str.lstrip("+").astype("int64").to_numpy()


def _create() -> None:
    big = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "event_segments",
        sa.Column("id", big, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, comment="operator-local date of submission"),
        sa.Column(
            "msisdn_min", sa.BigInteger, nullable=False, comment="E.164 digits as an integer"
        ),
        sa.Column("msisdn_max", sa.BigInteger, nullable=False),
        sa.Column(
            "ts_min", sa.BigInteger, nullable=False, comment="UTC epoch seconds of submission"
        ),
        sa.Column("ts_max", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
    )
    op.create_index(
        "ix_event_segments_msisdn", "event_segments", ["msisdn_min", "msisdn_max", "day", "id"]
    )
    op.create_index("ix_event_segments_ts", "event_segments", ["ts_min"])
    op.create_table(
        "event_keys",
        sa.Column(
            "part",
            sa.Integer,
            primary_key=True,
            comment="UTC day of done time, -1-day if pending",
        ),
        sa.Column(
            "event_key", sa.BigInteger, primary_key=True, comment="hash of the report identity"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "daily_aggregate_blocks",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column(
            "part", sa.SmallInteger, primary_key=True, comment="msisdn modulo the partition count"
        ),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
    )
    op.create_table(
        "device_blocks",
        sa.Column(
            "part", sa.SmallInteger, primary_key=True, comment="msisdn modulo the partition count"
        ),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False, comment="Arrow IPC stream, zstd"),
    )
    op.create_table(
        "edition_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("edition", sa.String(80), primary_key=True, comment="empty when not reported"),
        *(sa.Column(n, sa.BigInteger, nullable=False, server_default="0") for n in _COUNTS),
        sa.Column("latency_n", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("latency_sum_s", sa.BigInteger, nullable=False, server_default="0"),
        *(
            sa.Column(f"lat_{b}", sa.BigInteger, nullable=False, server_default="0")
            for b in range(_LAT_BINS)
        ),
    )


def _copy_events(conn: sa.Connection) -> None:
    segments = sa.table(
        "event_segments",
        *(sa.column(c) for c in ("day", "msisdn_min", "msisdn_max", "ts_min", "ts_max", "rows")),
        sa.column("data"),
    )
    keys = sa.table("event_keys", sa.column("part"), sa.column("event_key"))
    days = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT day FROM delivery_events"))]
    for day in days:
        ev = pd.read_sql(
            sa.text("SELECT * FROM delivery_events WHERE day = :d"), conn, params={"d": day}
        )
        ev["msisdn"] = _digits(ev["msisdn"])
        ev["day"] = pd.to_datetime(ev["day"]).dt.date
        ev["final"] = ev["final"].astype(bool)
        ev = ev.sort_values(["msisdn", "submitted_ts"], kind="stable").reset_index(drop=True)
        table = pa.Table.from_pandas(
            ev[list(_EVENT_SCHEMA.names)], schema=_EVENT_SCHEMA, preserve_index=False
        )
        for start in range(0, len(ev), _SEGMENT_ROWS):
            part = ev.iloc[start : start + _SEGMENT_ROWS]
            conn.execute(
                segments.insert().values(
                    day=day if isinstance(day, date) else date.fromisoformat(str(day)),
                    msisdn_min=int(part["msisdn"].min()),
                    msisdn_max=int(part["msisdn"].max()),
                    ts_min=int(part["submitted_ts"].min()),
                    ts_max=int(part["submitted_ts"].max()),
                    rows=len(part),
                    data=_encode(table.slice(start, _SEGMENT_ROWS)),
                )
            )
        done = ev["done_ts"]
        kpart = np.where(
            done.notna(),
            done.fillna(0).astype("int64") // 86400,
            -1 - ev["submitted_ts"].astype("int64") // 86400,
        )
        rows = [
            {"part": int(p), "event_key": int(k)}
            for p, k in zip(kpart, ev["event_key"], strict=True)
        ]
        if rows:
            conn.execute(keys.insert(), rows)


def _copy_aggregates(conn: sa.Connection) -> None:
    blocks = sa.table(
        "daily_aggregate_blocks",
        sa.column("day"),
        sa.column("part"),
        sa.column("rows"),
        sa.column("data"),
    )
    agg = pd.read_sql(sa.text("SELECT * FROM daily_aggregates"), conn)
    if agg.empty:
        return
    agg["msisdn"] = _digits(agg["msisdn"])
    agg["part"] = agg["msisdn"] % _PARTS
    schema = pa.schema(
        [("msisdn", pa.int64()), *((c, pa.int32()) for c in _COUNTS), ("last_ts", pa.int64())]
    )
    for (day, part), group in agg.groupby(["day", "part"]):
        g = group.sort_values("msisdn")
        t = pa.Table.from_pandas(g[list(schema.names)], schema=schema, preserve_index=False)
        conn.execute(
            blocks.insert().values(
                day=pd.Timestamp(str(day)).date(),
                part=int(str(part)),
                rows=len(g),
                data=_encode(t),
            )
        )


def _copy_devices(conn: sa.Connection) -> None:
    blocks = sa.table("device_blocks", sa.column("part"), sa.column("rows"), sa.column("data"))
    dev = pd.read_sql(sa.text("SELECT * FROM subscriber_devices"), conn)
    if dev.empty:
        return
    dev["msisdn"] = _digits(dev["msisdn"])
    dev["part"] = dev["msisdn"] % _PARTS
    schema = pa.schema(
        [
            ("msisdn", pa.int64()),
            ("imei", pa.string()),
            ("tac", pa.string()),
            ("seen_ts", pa.int64()),
        ]
    )
    for part, group in dev.groupby("part"):
        g = group.sort_values("msisdn")
        t = pa.Table.from_pandas(g[list(schema.names)], schema=schema, preserve_index=False)
        conn.execute(blocks.insert().values(part=int(str(part)), rows=len(g), data=_encode(t)))


def _rebuild_editions(conn: sa.Connection) -> None:
    sums = ", ".join(
        [
            "COUNT(*)",
            "SUM(CASE WHEN final THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN cause = 'delivered' THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN notify_ok = 1 AND cause = 'not_fetched' THEN 1 ELSE 0 END)",
            *(f"SUM(CASE WHEN cause = '{c}' THEN 1 ELSE 0 END)" for c in _CAUSES),
        ]
    )
    conn.execute(
        sa.text(
            f"INSERT INTO edition_daily (day, edition, {', '.join(_COUNTS)}) "
            f"SELECT day, COALESCE(edition, ''), {sums} FROM delivery_events "
            "GROUP BY day, COALESCE(edition, '')"
        )
    )


def upgrade() -> None:
    _create()
    conn = op.get_bind()
    _copy_events(conn)
    _copy_aggregates(conn)
    _copy_devices(conn)
    _rebuild_editions(conn)
    op.drop_table("delivery_events")
    op.drop_table("daily_aggregates")
    op.drop_table("subscriber_devices")


def downgrade() -> None:
    raise NotImplementedError(
        "0002 cannot be downgraded: the one-row-per-event tables would come back empty; "
        "restore a backup taken before the upgrade instead"
    )
