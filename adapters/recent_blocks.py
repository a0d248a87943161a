"""The recent-events index: the last days of events again, by MSISDN partition.

A diagnosis look-up (``SqlStore.recent_events``) must cost a few milliseconds on a store that
holds a month of a province's events. Event segments are written per ingested chunk and day,
so a subscriber's events of one day are spread over a dozen segments; reading them is tens of
milliseconds. This index keeps a second copy of the newest events, cut the other way:

- Every ingest session appends one *generation* (``gen``) to each partition it touches: its
  new events whose MSISDN falls in partition ``part`` (``msisdn % RECENT_PARTS``), sorted by
  MSISDN, as one *block*. Nothing is rewritten: generations whose newest event is more than
  ``RECENT_DAYS`` days older than the newest event held are deleted, so the index holds every
  event of the last ``RECENT_DAYS`` days (the *horizon*), and a little more.
- A block is stored as *slices* (rows of ``recent_event_slices``): runs of whole subscribers
  of about ``RECENT_SLICE_ROWS`` events, each one Arrow IPC record-batch message in
  ``RECENT_SCHEMA`` (plain columns, so that a message decodes without the stream's schema and
  dictionaries), lz4 as a whole. A slice is keyed by its smallest MSISDN: a look-up reads,
  in one statement, the newest generations of its partition and of each only the one slice
  that can hold the subscriber (a few kilobytes instead of the whole block), and slices the
  subscriber's rows out of it. When they hold fewer than ``limit`` events of the subscriber
  since the horizon, the store reads the rest from the segments older than the horizon (cheap
  when there are none; tens of milliseconds for a quiet subscriber on a month of data).
- A partition that collects more than ``RECENT_MAX_GENERATIONS`` generations (many small
  ingest sessions, such as live delivery reports) has them merged into one.

Every slice of a block carries the block's oldest and newest submission (``ts_min``,
``ts_max``): generations are ordered, expired and purged as wholes.

Cost: one more sort and encode of each session's new events (no merges for daily files).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mmsq.adapters.event_blocks import EVENT_SCHEMA
from mmsq.adapters.sql_bulk import bulk_load
from mmsq.adapters.sql_read_scope import driver_rows, prefetched
from mmsq.adapters.sql_recent_schema import recent_event_slices

__all__ = [
    "RECENT_DAYS",
    "RECENT_MAX_GENERATIONS",
    "RECENT_PARTS",
    "RECENT_SCHEMA",
    "RECENT_SLICE_ROWS",
    "RecentIndexWriter",
    "block_rows",
    "build_generation",
    "decode_block",
    "read_recent",
]

#: MSISDN partitions: 1.5M subscribers make about 370 subscribers a partition.
RECENT_PARTS = 4096
#: Days of events the index holds, counted back from the newest event held.
RECENT_DAYS = 14
#: Generations a partition may hold before they are merged into one.
RECENT_MAX_GENERATIONS = 40
#: New events buffered by an ingest session before a generation is written (bounds memory:
#: about 100 bytes an event; a province-day file is one generation).
RECENT_FLUSH_ROWS = 4_000_000
#: Events a slice holds, about: a block is cut where the first subscriber starts at or after
#: each multiple of this (a subscriber's events of a generation are never split). A daily
#: block of 1.5M subscribers (about 730 events) makes six slices of 6 KB; a look-up reads one.
RECENT_SLICE_ROWS = 128

#: The columns of a slice: those of an event segment, with plain strings where segments have
#: dictionaries (a record-batch message with dictionaries cannot be read without the
#: dictionary messages of its stream).
RECENT_SCHEMA = pa.schema(
    [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in EVENT_SCHEMA
    ]
)
_LZ4 = pa.Codec("lz4")
_MSISDN = RECENT_SCHEMA.get_field_index("msisdn")
_SUBMITTED = RECENT_SCHEMA.get_field_index("submitted_ts")
_DONE = RECENT_SCHEMA.get_field_index("done_ts")
_DAY_S = 86400
_MSISDN_BITS = 50
#: Rows cast to ``RECENT_SCHEMA`` at a time while a generation is cut into blocks (a cast has
#: a fixed cost of tens of microseconds a column: once a block would be seconds a session).
_CAST_ROWS = 65_536


def _as_recent(table: pa.Table) -> pa.Table:
    """Event columns in ``RECENT_SCHEMA`` (dictionaries decoded)."""
    if table.schema == RECENT_SCHEMA:
        return table
    return pa.Table.from_arrays(
        [table[f.name].cast(f.type) for f in RECENT_SCHEMA], schema=RECENT_SCHEMA
    )


#: A row of ``recent_event_slices``: part, gen, msisdn_min, rows, ts_min, ts_max, raw_size,
#: data.
_Row = tuple[int, int, int, int, int, int, int, bytes]


def block_rows(part: int, gen: int, batch: pa.RecordBatch) -> list[_Row]:
    """The slices of one block: ``batch`` (``RECENT_SCHEMA``, sorted by MSISDN) cut at
    subscriber boundaries into runs of about ``RECENT_SLICE_ROWS`` rows."""
    n = batch.num_rows
    if not n:
        return []
    m = batch.column(_MSISDN).to_numpy()
    ts = batch.column(_SUBMITTED).to_numpy()
    ts_min, ts_max = int(ts.min()), int(ts.max())
    firsts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])  # where each subscriber starts
    # The first subscriber starting at or after each multiple of RECENT_SLICE_ROWS.
    wanted = np.searchsorted(firsts, np.arange(0, n, RECENT_SLICE_ROWS))
    cuts = np.unique(firsts[wanted[wanted < len(firsts)]]).tolist()
    rows: list[_Row] = []
    for a, b in zip(cuts, [*cuts[1:], n], strict=True):
        message = batch.slice(a, b - a).serialize()
        data = _LZ4.compress(message, asbytes=True)
        rows.append((part, gen, int(m[a]), b - a, ts_min, ts_max, message.size, data))
    return rows


def _decode_slice(data: bytes, raw_size: int) -> pa.RecordBatch:
    message = _LZ4.decompress(data, decompressed_size=raw_size)
    return pa.ipc.read_record_batch(message, RECENT_SCHEMA)


def decode_block(slices: Iterable[tuple[int, bytes]]) -> pa.Table:
    """A whole block from its slices' (raw_size, data), in MSISDN order."""
    return pa.Table.from_batches(
        [_decode_slice(data, raw_size) for raw_size, data in slices], schema=RECENT_SCHEMA
    )


def _table_rows(part: int, gen: int, table: pa.Table) -> list[_Row]:
    table = _as_recent(table).combine_chunks()
    batches = table.to_batches()
    return block_rows(part, gen, batches[0]) if batches else []


_COLUMNS = ("part", "gen", "msisdn_min", "rows", "ts_min", "ts_max", "raw_size", "data")


def _insert(conn: Connection, rows: list[_Row]) -> None:
    """Rows of ``recent_event_slices`` through the driver (thousands of blobs a session)."""
    bulk_load(conn, "recent_event_slices", _COLUMNS, rows)


def horizon(conn: Connection) -> int | None:
    """UTC epoch seconds from which the index holds every event (None: it holds nothing)."""
    t = recent_event_slices
    newest = conn.execute(sa.select(sa.func.max(t.c.ts_max))).scalar_one_or_none()
    return None if newest is None else int(newest) - RECENT_DAYS * _DAY_S


#: Blocks one statement brings, newest first: a subscriber who gets two editions a day finds
#: ten events in five daily generations. More are fetched when needed.
_FIRST_BLOCKS = 5

_t = recent_event_slices
#: The partition's generations (each slice carries its block's ts_max) ...
_BLOCKS = (
    sa.select(_t.c.gen, _t.c.ts_max)
    .where(_t.c.part == sa.bindparam("part"))
    .group_by(_t.c.gen, _t.c.ts_max)
    .subquery("blk")
)
_NEWEST_FIRST = (_BLOCKS.c.ts_max.desc(), _BLOCKS.c.gen.desc())
#: ... newest first (by their newest submission), ``n`` at a time, each with the newest
#: submission of the one after it (so that reading can stop without fetching it) and the
#: newest submission the index holds (its horizon, by the ts_max index) ...
_GENERATIONS = (
    sa.select(
        _BLOCKS.c.gen,
        _BLOCKS.c.ts_max,
        sa.func.lead(_BLOCKS.c.ts_max).over(order_by=_NEWEST_FIRST).label("next_ts_max"),
        sa.select(sa.func.max(_t.c.ts_max)).scalar_subquery().label("newest"),
    )
    .order_by(*_NEWEST_FIRST)
    .limit(sa.bindparam("n"))
    .offset(sa.bindparam("skip"))
    .subquery("g")
)
_s = _t.alias("s")
_k = _t.alias("k")
#: ... and of each, in the same statement, the one slice that can hold ``msisdn`` (the last
#: starting at or before it; none when the block starts after it). Rows in no particular
#: order: the few are put in order after the fetch.
_NEWEST_BLOCKS = sa.select(
    _GENERATIONS.c.gen,
    _GENERATIONS.c.ts_max,
    _GENERATIONS.c.next_ts_max,
    _GENERATIONS.c.newest,
    _s.c.raw_size,
    _s.c.data,
).outerjoin_from(
    _GENERATIONS,
    _s,
    (_s.c.part == sa.bindparam("part"))
    & (_s.c.gen == _GENERATIONS.c.gen)
    & (
        _s.c.msisdn_min
        == sa.select(sa.func.max(_k.c.msisdn_min))
        .where(
            _k.c.part == sa.bindparam("part"),
            _k.c.gen == _GENERATIONS.c.gen,
            _k.c.msisdn_min <= sa.bindparam("msisdn"),
        )
        .scalar_subquery()
    ),
)


class _Block(NamedTuple):
    gen: int
    ts_max: int
    next_ts_max: int | None
    newest: int
    raw_size: int | None  # None: no slice of the block can hold the subscriber
    data: bytes | None


def newest_blocks_params(msisdn: int, skip: int = 0) -> dict[str, int]:
    """The parameters of ``_NEWEST_BLOCKS`` for a subscriber (digits of the E.164 number),
    the first ``skip`` blocks of its partition passed over."""
    return {"part": msisdn % RECENT_PARTS, "msisdn": msisdn, "n": _FIRST_BLOCKS, "skip": skip}


def _fetch_blocks(conn: Connection, msisdn: int, skip: int) -> list[_Block]:
    """``_NEWEST_BLOCKS``, newest first: fetched ahead by the enclosing read scope, or read
    now. On PostgreSQL through the driver in binary format: bytea comes as bytes instead of
    hex text twice its size, which the server encodes and the client decodes."""
    params = newest_blocks_params(msisdn, skip)
    rows = prefetched(conn, _NEWEST_BLOCKS, params)
    if rows is None:
        rows = _read_blocks(conn, params)
    blocks = [_Block(*r) for r in rows]
    blocks.sort(key=lambda b: (b.ts_max, b.gen), reverse=True)
    return blocks


def _read_blocks(conn: Connection, params: dict[str, int]) -> list[Any]:
    rows: list[Any]
    if conn.dialect.name == "postgresql":
        rows = driver_rows(conn, _NEWEST_BLOCKS, params)
    else:
        rows = list(conn.execute(_NEWEST_BLOCKS, params))
    return rows


def _rows_of(batch: pa.RecordBatch, msisdn: int) -> pa.RecordBatch | None:
    """The subscriber's rows of a batch (sorted by MSISDN), or None."""
    m = batch.column(_MSISDN).to_numpy()
    a = int(np.searchsorted(m, msisdn, "left"))
    b = int(np.searchsorted(m, msisdn, "right"))
    return batch.slice(a, b - a) if b > a else None


def read_recent(
    conn: Connection, msisdn: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """From the index: the subscriber's newest events no older than the horizon (at most
    ``limit``, newest first), and the horizon (None: the index is empty). Every event of the
    subscriber since the horizon is among them; older ones are for the segments to supply.

    Blocks are read newest first (by their newest submission), ``_FIRST_BLOCKS`` to a
    statement, one slice of each, and reading stops as soon as ``limit`` events are found
    that are newer than anything the unread blocks hold: usually one statement and a handful
    of slices of a few kilobytes, whatever the number of generations.
    """
    hits: list[pa.RecordBatch] = []
    found_ts: list[int] = []  # submissions found so far, newest first
    cutoff: int | None = None
    skip = 0
    while True:
        blocks = _fetch_blocks(conn, msisdn, skip)
        if cutoff is None:
            if not blocks:
                newest = conn.execute(sa.select(sa.func.max(_t.c.ts_max))).scalar_one_or_none()
                return [], None if newest is None else int(newest) - RECENT_DAYS * _DAY_S
            cutoff = int(blocks[0].newest) - RECENT_DAYS * _DAY_S
        for b in blocks:
            if b.ts_max < cutoff or (len(found_ts) >= limit and found_ts[limit - 1] > b.ts_max):
                return _newest(hits, cutoff, limit), cutoff  # nothing older is among them
            if b.data is None or b.raw_size is None:
                continue
            hit = _rows_of(_decode_slice(b.data, b.raw_size), msisdn)
            if hit is not None:
                hits.append(hit)
                found_ts = sorted(found_ts + hit.column(_SUBMITTED).to_pylist(), reverse=True)
        after = blocks[-1].next_ts_max
        if (
            after is None
            or after < cutoff
            or (len(found_ts) >= limit and found_ts[limit - 1] > after)
        ):
            return _newest(hits, cutoff, limit), cutoff
        skip += len(blocks)


def _newest(hits: list[pa.RecordBatch], cutoff: int, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of ``hits`` submitted no earlier than ``cutoff``, as dicts
    (one conversion a column: a few rows, where per-row conversion would cost more)."""
    if not hits:
        return []
    batch = hits[0] if len(hits) == 1 else pa.concat_batches(hits)
    columns = [c.to_pylist() for c in batch.columns]
    submitted, done = columns[_SUBMITTED], columns[_DONE]
    order = sorted(
        (i for i, ts in enumerate(submitted) if ts >= cutoff),
        key=lambda i: (submitted[i], done[i] or 0),
        reverse=True,
    )[:limit]
    names = RECENT_SCHEMA.names
    return [dict(zip(names, [c[i] for c in columns], strict=True)) for i in order]


@dataclass
class _PendingGeneration:
    """New events of a session, to become generation ``gen`` of the partitions they touch."""

    table: pa.Table
    gen: int


_PART_BITS = (RECENT_PARTS - 1).bit_length()


def _partition_order(m: npt.NDArray[np.int64], part: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Positions by partition, then MSISDN, ties in input order: what
    ``np.argsort((part << 50) | m, kind="stable")`` gives, for half its cost (3M rows: 0.13 s
    against 0.26 s).

    The partition is the MSISDN's low bits (``RECENT_PARTS`` is a power of two), so within a
    partition MSISDNs order as their high bits ``m >> _PART_BITS`` do. When partition, those
    high bits (less their minimum) and the row position fit in one int64, a plain sort of
    that one key gives the stable order (the position breaks ties, and comes back out of the
    low bits); numpy sorts int64 values several times faster than it argsorts them, stably
    or not. Otherwise (MSISDNs spread over too wide a range) the stable argsort runs."""
    n = len(m)
    if not n:
        return np.zeros(0, dtype=np.intp)
    high = m >> _PART_BITS
    low = int(high.min())
    span_bits = (int(high.max()) - low).bit_length()
    pos_bits = max(1, (n - 1).bit_length())
    too_wide = _PART_BITS + span_bits + pos_bits > 63
    if too_wide or int(m.min()) < 0 or int(m.max()) >> _MSISDN_BITS:
        return np.argsort((part << _MSISDN_BITS) | m, kind="stable")
    key = (part << (span_bits + pos_bits)) | ((high - low) << pos_bits)
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << pos_bits) - 1
    return key.astype(np.intp, copy=False)


def build_generation(pending: _PendingGeneration) -> list[_Row]:
    """The slices of a generation's blocks, one block per partition (no store access: safe in
    a thread)."""
    # Taken over from ``pending``, so that each source column is freed once it is sorted:
    # the events are held once and a column, not twice.
    table, gen = pending.table, pending.gen
    pending.table = table.schema.empty_table()
    m = table["msisdn"].to_numpy()
    part = m % RECENT_PARTS
    # By partition, then MSISDN (below 2**50): a look-up slices its rows out of a block.
    order = _partition_order(m, part)
    del m
    indices = pa.array(order)
    names = table.column_names
    columns = []
    for _ in names:
        columns.append(table.column(0).take(indices))
        table = table.remove_column(0)
    table = pa.Table.from_arrays(columns, names=names)
    del columns
    part = part[order]
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    ends = np.r_[starts[1:], len(part)]
    rows: list[_Row] = []
    i = 0
    while i < len(starts):
        # Whole partitions of about _CAST_ROWS rows, cast together, then cut into blocks.
        a = int(starts[i])
        j = max(i, min(int(np.searchsorted(ends, a + _CAST_ROWS)), len(starts) - 1))
        group = _as_recent(table.slice(a, int(ends[j]) - a)).combine_chunks().to_batches()[0]
        for k in range(i, j + 1):
            lo, hi = int(starts[k]) - a, int(ends[k]) - a
            rows += block_rows(int(part[starts[k]]), gen, group.slice(lo, hi - lo))
        i = j + 1
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
        """Write the buffered events as one generation of every partition they touch; drop
        the generations past the horizon; merge partitions that have too many."""
        self.write(self.start_flush())

    def start_flush(self) -> _PendingGeneration | None:
        """The first half of ``flush``: take the buffered events and the two facts the
        generation needs from the store (its horizon, the next generation number). The
        result is made into blocks by ``build_generation``, which does not touch the store
        (another thread can run it while this one folds aggregates), then written by
        ``write``."""
        if not self._pending:
            return None
        table = pa.concat_tables(self._pending)
        self._pending, self._rows = [], 0
        cutoff = horizon(self._conn)
        newest = int(pc.max(table["submitted_ts"]).as_py())
        if cutoff is not None and newest < cutoff:
            return None  # a back-fill older than the horizon: the segments have it
        return _PendingGeneration(table, self._next_gen())

    def write(self, pending: _PendingGeneration | list[_Row] | None) -> None:
        """The second half of ``flush``: insert the generation's slices (made here unless
        ``build_generation`` made them already), expire old generations, merge crowded
        partitions."""
        if pending is None:
            return
        rows = build_generation(pending) if isinstance(pending, _PendingGeneration) else pending
        _insert(self._conn, rows)
        self._expire()
        self._merge_crowded(sorted({r[0] for r in rows}))

    def _next_gen(self) -> int:
        t = recent_event_slices
        top = self._conn.execute(sa.select(sa.func.max(t.c.gen))).scalar_one_or_none()
        return int(top or 0) + 1

    def _expire(self) -> None:
        cutoff = horizon(self._conn)
        if cutoff is not None:
            t = recent_event_slices
            self._conn.execute(t.delete().where(t.c.ts_max < cutoff))

    def _merge_crowded(self, parts: list[int]) -> None:
        t = recent_event_slices
        q = (
            sa.select(t.c.part)
            .group_by(t.c.part)
            .having(sa.func.count(sa.distinct(t.c.gen)) > RECENT_MAX_GENERATIONS)
        )
        if len(parts) <= 500:  # a few live reports: look at their partitions only
            q = q.where(t.c.part.in_(parts))
        touched = set(parts)
        crowded = [int(p) for (p,) in self._conn.execute(q) if int(p) in touched]
        if crowded:
            self.merge(crowded)

    def _blocks(self, *where: Any) -> dict[tuple[int, int], pa.Table]:
        """The blocks with slices matching ``where``, whole, by (part, gen)."""
        t = recent_event_slices
        slices: defaultdict[tuple[int, int], list[tuple[int, bytes]]] = defaultdict(list)
        q = (
            sa.select(t.c.part, t.c.gen, t.c.raw_size, t.c.data)
            .where(*where)
            .order_by(t.c.part, t.c.gen, t.c.msisdn_min)
        )
        for part, gen, raw_size, data in self._conn.execute(q):
            slices[int(part), int(gen)].append((int(raw_size), bytes(data)))
        return {key: decode_block(s) for key, s in slices.items()}

    def merge(self, parts: Iterable[int]) -> None:
        """Merge all generations of each of ``parts`` into one (the newest number)."""
        t = recent_event_slices
        for p in parts:
            blocks = self._blocks(t.c.part == p)
            if len(blocks) < 2:
                continue
            merged = pa.concat_tables(blocks.values())
            merged = merged.take(pc.sort_indices(merged["msisdn"]))
            self._conn.execute(t.delete().where(t.c.part == p))
            _insert(self._conn, _table_rows(p, max(gen for _, gen in blocks), merged))

    def purge(self, cutoff: int) -> None:
        """Drop events submitted before ``cutoff`` (UTC epoch seconds)."""
        t = recent_event_slices
        self._conn.execute(t.delete().where(t.c.ts_max < cutoff))
        keys = self._conn.execute(
            sa.select(t.c.part, t.c.gen).where(t.c.ts_min < cutoff).distinct()
        ).all()
        for p, gen in keys:
            where = (t.c.part == p, t.c.gen == gen)
            table = self._blocks(*where)[int(p), int(gen)]
            kept = table.filter(pc.greater_equal(table["submitted_ts"], cutoff))
            self._conn.execute(t.delete().where(*where))
            _insert(self._conn, _table_rows(int(p), int(gen), kept))
