"""The recent-events index: each subscriber's newest events, by MSISDN partition.

A diagnosis look-up (``SqlStore.recent_events``) must cost a few milliseconds on a store that
holds a month of a province's events. Event segments are written per ingested chunk and day,
so a subscriber's events of one day are spread over a dozen segments; reading them is tens of
milliseconds. This index keeps a second, small copy of the newest events instead:

- ``recent_event_blocks`` has rows (part, gen): the events of one ingest session whose MSISDN
  falls in partition ``part`` (``msisdn % RECENT_PARTS``), as one Arrow IPC stream
  (uncompressed columns, lz4 over the whole stream: a small block decodes in tens of
  microseconds, where Arrow's per-buffer zstd costs hundreds).
- Every ingest session appends one generation to each partition it touches (set-based: one
  sort and one multi-row insert); when a partition holds more generations than its threshold
  (between ``RECENT_MAX_GENERATIONS // 2`` and ``RECENT_MAX_GENERATIONS``, staggered by
  partition so that partitions are not all merged by the same ingest), they are merged into
  one holding at most ``RECENT_KEEP`` events per subscriber.
- A look-up reads the few generations of one partition in one statement.

So the index answers ``recent_events(msisdn, limit)`` for ``limit <= RECENT_KEEP``; the store
falls back to the segments for larger limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mmsq.adapters.event_blocks import EVENT_SCHEMA
from mmsq.adapters.sql_recent_schema import recent_event_blocks

__all__ = [
    "RECENT_KEEP",
    "RECENT_MAX_GENERATIONS",
    "RECENT_PARTS",
    "RECENT_SCHEMA",
    "RecentIndexWriter",
    "decode_recent",
    "encode_recent",
    "newest_per_subscriber",
    "read_recent",
]

#: MSISDN partitions: 1.5M subscribers make about 370 subscribers a partition.
RECENT_PARTS = 4096
#: Events kept per subscriber when a partition's generations are merged.
RECENT_KEEP = 20
#: Most generations a partition holds before they are merged.
RECENT_MAX_GENERATIONS = 12
#: New events buffered by an ingest session before a generation is written.
RECENT_FLUSH_ROWS = 2_000_000

#: The columns of a block: those of an event segment (a block holds a few hundred events;
#: dictionary columns make its sort and copy cheaper than plain strings would).
RECENT_SCHEMA = EVENT_SCHEMA
_LZ4 = pa.Codec("lz4")


def encode_recent(table: pa.Table) -> tuple[bytes, int]:
    """One block: (lz4 of the uncompressed IPC stream, size of the stream)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, RECENT_SCHEMA) as writer:
        writer.write_table(table)
    raw = sink.getvalue()
    return _LZ4.compress(raw, asbytes=True), raw.size


def decode_recent(data: bytes, raw_size: int) -> pa.Table:
    raw = _LZ4.decompress(data, decompressed_size=raw_size)
    return pa.ipc.open_stream(raw).read_all()


def _as_recent(table: pa.Table) -> pa.Table:
    """Event columns in ``RECENT_SCHEMA`` (segments of revision 0002's data migration hold
    plain strings where it has dictionaries)."""
    if table.schema == RECENT_SCHEMA:
        return table
    return pa.Table.from_arrays(
        [table[f.name].cast(f.type) for f in RECENT_SCHEMA], schema=RECENT_SCHEMA
    )


def _insert(conn: Connection, rows: list[tuple[int, int, int, int, int, bytes]]) -> None:
    """Rows of ``recent_event_blocks`` through the driver (thousands of blobs a session)."""
    if not rows:
        return
    sql = "INSERT INTO recent_event_blocks (part, gen, rows, ts_min, raw_size, data) " + (
        "VALUES (%s, %s, %s, %s, %s, %s)"
        if conn.dialect.name == "postgresql"
        else "VALUES (?, ?, ?, ?, ?, ?)"
    )
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(sql, rows)
    finally:
        cur.close()


def _newest_first(table: pa.Table) -> pa.Array:
    """Row order: MSISDN, then newest submission first (ties: newest done time first)."""
    done = pc.fill_null(table["done_ts"], 0)
    return pc.sort_indices(
        pa.table(
            {"m": table["msisdn"], "s": table["submitted_ts"], "d": done},
        ),
        sort_keys=[("m", "ascending"), ("s", "descending"), ("d", "descending")],
    )


def newest_per_subscriber(table: pa.Table, keep: int) -> pa.Table:
    """At most ``keep`` newest events per MSISDN, sorted by MSISDN then newest first."""
    table = table.take(_newest_first(table))
    m = table["msisdn"].to_numpy()
    if not len(m):
        return table
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    rank = np.arange(len(m)) - np.repeat(starts, np.diff(np.r_[starts, len(m)]))
    if (rank < keep).all():
        return table
    return table.filter(pa.array(rank < keep))


def _threshold(part: int) -> int:
    half = RECENT_MAX_GENERATIONS // 2
    return half + part % (RECENT_MAX_GENERATIONS - half + 1)


def read_recent(conn: Connection, msisdn: int, limit: int) -> list[dict[str, Any]]:
    """The subscriber's newest ``limit`` events from the index, newest first."""
    t = recent_event_blocks
    found = []
    for raw_size, data in conn.execute(
        sa.select(t.c.raw_size, t.c.data).where(t.c.part == msisdn % RECENT_PARTS)
    ):
        table = decode_recent(data, raw_size)
        hit = table.filter(pc.equal(table["msisdn"], msisdn))
        if hit.num_rows:
            found.append(hit)
    if not found:
        return []
    table = pa.concat_tables(found)
    table = table.take(_newest_first(table)).slice(0, limit)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


class RecentIndexWriter:
    """Appends an ingest session's new events to the index, inside its transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pending: list[pa.Table] = []
        self._rows = 0

    def add(self, events: pa.Table) -> None:
        """New (not previously stored) events, with the columns of ``EVENT_SCHEMA``."""
        self._pending.append(events)
        self._rows += events.num_rows
        if self._rows >= RECENT_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events as one generation of every partition they touch, then
        merge the partitions that have reached their threshold."""
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._rows = [], 0
        m = table["msisdn"].to_numpy()
        part = m % RECENT_PARTS
        order = np.lexsort((m, part))
        table = _as_recent(table.take(pa.array(order)))
        part = part[order]
        ts = table["submitted_ts"].to_numpy()
        starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
        ends = np.r_[starts[1:], len(part)]
        ts_min = np.minimum.reduceat(ts, starts) if len(ts) else ts
        gen = self._next_gen()
        rows = []
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            data, raw_size = encode_recent(table.slice(a, b - a))
            rows.append((int(part[a]), gen, b - a, int(ts_min[i]), raw_size, data))
        _insert(self._conn, rows)
        self._merge_full([r[0] for r in rows])

    def _next_gen(self) -> int:
        t = recent_event_blocks
        top = self._conn.execute(sa.select(sa.func.max(t.c.gen))).scalar_one_or_none()
        return int(top or 0) + 1

    def _merge_full(self, parts: Sequence[int]) -> None:
        t = recent_event_blocks
        counts: dict[int, int] = dict(
            self._conn.execute(sa.select(t.c.part, sa.func.count()).group_by(t.c.part)).all()
        )
        due = [p for p in parts if counts.get(p, 0) > _threshold(p)]
        for batch in _batches(due, 256):
            self.merge(batch)

    def merge(self, parts: Iterable[int]) -> None:
        """Merge all generations of ``parts`` into one each (newest ``RECENT_KEEP`` events per
        subscriber), keeping the newest generation number."""
        t = recent_event_blocks
        wanted = list(parts)
        if not wanted:
            return
        blocks: dict[int, list[tuple[int, pa.Table]]] = {}
        for p, gen, raw_size, data in self._conn.execute(
            sa.select(t.c.part, t.c.gen, t.c.raw_size, t.c.data).where(t.c.part.in_(wanted))
        ):
            blocks.setdefault(int(p), []).append((int(gen), decode_recent(data, raw_size)))
        rows = []
        for p, gens in blocks.items():
            merged = newest_per_subscriber(pa.concat_tables([g[1] for g in gens]), RECENT_KEEP)
            if not merged.num_rows:
                continue
            data, raw_size = encode_recent(merged)
            ts_min = int(pc.min(merged["submitted_ts"]).as_py())
            rows.append((p, max(g[0] for g in gens), merged.num_rows, ts_min, raw_size, data))
        self._conn.execute(t.delete().where(t.c.part.in_(list(blocks))))
        _insert(self._conn, rows)

    def purge(self, cutoff: int) -> None:
        """Drop events submitted before ``cutoff`` (UTC epoch seconds)."""
        t = recent_event_blocks
        keys = self._conn.execute(sa.select(t.c.part, t.c.gen).where(t.c.ts_min < cutoff)).all()
        for i in range(0, len(keys), 256):
            for p, gen in keys[i : i + 256]:
                where = (t.c.part == p, t.c.gen == gen)
                raw_size, data = self._conn.execute(
                    sa.select(t.c.raw_size, t.c.data).where(*where)
                ).one()
                table = decode_recent(data, raw_size)
                kept = table.filter(pc.greater_equal(table["submitted_ts"], cutoff))
                if not kept.num_rows:
                    self._conn.execute(t.delete().where(*where))
                    continue
                new, new_size = encode_recent(kept)
                self._conn.execute(
                    t.update()
                    .where(*where)
                    .values(
                        rows=kept.num_rows,
                        ts_min=int(pc.min(kept["submitted_ts"]).as_py()),
                        raw_size=new_size,
                        data=new,
                    )
                )


def _batches(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
