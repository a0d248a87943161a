"""One ingest transaction on the SQL store: events, keys, aggregates and devices, atomically.

Per chunk, only two things touch the database: the event keys (one set-based insert that
returns the keys that were new) and the event segments of the new events (a few hundred BLOB
rows). The narrow columns that aggregates need are kept in memory (about 25 bytes an event)
and folded into the aggregate, device and edition tables once, when the session ends. So a
province-day costs a handful of statements per chunk instead of one SQL row per event.

On SQLite the transaction holds the write lock from its first statement to the end (other
writers wait up to the busy timeout); on PostgreSQL an advisory lock serialises ingests, since
aggregate blocks are read, merged and rewritten.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mmsq.adapters.event_blocks import (
    AGGREGATE_SCHEMA,
    DEVICE_PARTS,
    DEVICE_SCHEMA,
    EVENT_SCHEMA,
    PARTS,
    SEGMENT_ROWS,
    decode,
    encode,
    encode_framed,
    key_partition,
    msisdn_digits,
)
from mmsq.adapters.recent_blocks import RecentIndexWriter, build_generation
from mmsq.adapters.sql_bulk import bulk_load
from mmsq.adapters.sql_event_schema import (
    daily_aggregate_blocks,
    device_blocks,
    edition_daily,
    event_segments,
)
from mmsq.adapters.sql_schema import quarantine, unknown_codes
from mmsq.aggregates import (
    COUNT_COLUMNS,
    cause_codes,
    daily_counts,
    edition_counts,
    latest_devices,
    merge_counts,
)
from mmsq.domain import QuarantinedRecord
from mmsq.ports import StoredChunk

__all__ = ["SqlIngestSession"]

_EPOCH = date(1970, 1, 1)
_INGEST_LOCK = 0x6D6D7371  # "mmsq": the PostgreSQL advisory lock that serialises ingests
#: Event keys per insert statement at the end of a session (about 20 bytes each as JSON text).
_KEY_BATCH = 1 << 19
#: SQLite page cache (KiB) of an ingest session. With the store's usual cache (256 MiB)
#: nearly every page a province-day writes stayed dirty in memory until the commit, which
#: then wrote them all to the WAL with nothing else left to run beside it. With a small one
#: pages spill to the WAL as they are written: the event segments' on the thread that stores
#: the chunks while the others read and prepare the next ones, the event keys' while the
#: fold's worker threads compute the blocks. What a session reads back (its key partitions,
#: the blocks it merges into) it reads in order, once, so the small cache costs no re-reads.
#: Only sessions that store a chunk of ``_BULK_ROWS`` events or more take it: shrinking the
#: cache drops its pages, which the small sessions of live delivery reports would otherwise
#: take from the connection's later reads.
_STREAM_CACHE_KIB = 32 * 1024
_BULK_ROWS = 65536
_T = TypeVar("_T")


def _day_numbers(day: pd.Series) -> npt.NDArray[np.int32]:
    """Local days (text, date or datetime) -> days since 1970-01-01, via the few distinct ones."""
    cat = pd.Categorical(day)
    cats = pd.to_datetime(pd.Series(np.asarray(cat.categories))).to_numpy("datetime64[D]")
    return np.asarray(cats.astype(np.int64)[cat.codes], dtype=np.int32)


def _json_ints(values: npt.NDArray[np.int64]) -> str:
    """A JSON array of the integers (for ``json_each``), the decimal texts made and joined by
    Arrow: no Python int per value (half the time of ``json.dumps`` of a list)."""
    texts = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    one_list = pa.ListArray.from_arrays(pa.array([0, len(texts)], type=pa.int32()), texts)
    return "[" + str(pc.binary_join(one_list, ",")[0].as_py()) + "]"


def _segment_order(
    day: npt.NDArray[np.int32], msisdn: npt.NDArray[np.int64], submitted: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Positions by (day, MSISDN, submission), ties in input order: what
    ``np.lexsort((submitted, msisdn, day))`` gives, for a third of its cost. Day and MSISDN
    fit in one int64 key (a chunk spans a few days; MSISDNs are below 2**50), which one
    unstable sort orders; only the rows that share day and MSISDN are ordered again."""
    if not len(day):
        return np.zeros(0, dtype=np.int64)
    first = int(day.min())
    if int(day.max()) - first >= 1 << 13 or int(msisdn.min()) < 0 or int(msisdn.max()) >= 1 << 50:
        return np.lexsort((submitted, msisdn, day))
    key = ((day.astype(np.int64) - first) << 50) | msisdn
    order = np.argsort(key)
    ranked = key[order]
    tie = ranked[1:] == ranked[:-1]
    if tie.any():
        pos = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
        group = np.cumsum(np.r_[True, ~tie])[pos]
        rows = order[pos]
        order[pos] = rows[np.lexsort((rows, submitted[rows], group))]
    return order


def _stable_order_by(
    day: npt.NDArray[np.integer], part: npt.NDArray[np.integer], parts: int
) -> npt.NDArray[np.int64]:
    """``np.lexsort((part, day))``: positions by day, then partition, ties in input order.
    A few days of ``parts`` partitions fit in 16 bits, which numpy sorts stably by radix
    instead of merging."""
    if not len(day):
        return np.zeros(0, dtype=np.int64)
    first = int(day.min())
    if (int(day.max()) - first + 1) * parts > np.iinfo(np.int16).max:
        return np.lexsort((part, day))
    key = ((day.astype(np.int64) - first) * parts + part).astype(np.int16)
    return np.argsort(key, kind="stable").astype(np.int64)


def _to_date(n: int) -> date:
    return _EPOCH + timedelta(days=int(n))


def _by_msisdn(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table["msisdn"]))


def _merge_device_block(old: pa.Table, new: pa.Table) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """Stored devices updated by newly seen ones (both sorted by MSISDN): a subscriber's row is
    replaced when the new IMEI differs and was seen no earlier than the stored one. Returns
    the merged rows (by MSISDN) and the MSISDNs whose row is new or replaced."""
    old_m = old["msisdn"].to_numpy()
    new_m = new["msisdn"].to_numpy()
    keys = np.union1d(old_m, new_m)
    pick = np.full(len(keys), -1, dtype=np.int64)
    pick[np.searchsorted(keys, old_m)] = np.arange(len(old_m))
    in_new = np.searchsorted(keys, new_m)
    prev = pick[in_new]
    replace = prev < 0
    both = ~replace
    if both.any():
        old_rows = pa.array(prev[both])
        differs = pc.not_equal(old["imei"].take(old_rows), new["imei"].filter(pa.array(both)))
        later = new["seen_ts"].to_numpy()[both] >= old["seen_ts"].to_numpy()[prev[both]]
        replace[both] = differs.to_numpy(zero_copy_only=False) & later
    pick[in_new[replace]] = len(old_m) + np.flatnonzero(replace)
    merged = pa.concat_tables([old.cast(DEVICE_SCHEMA), new]).take(pa.array(pick))
    return merged, new_m[replace]


def _aggregate_rows(
    narrow: list[pd.DataFrame], stored: dict[int, dict[int, bytes]]
) -> list[tuple[date, bool, list[dict[str, Any]]]]:
    """The session's per-subscriber daily counts merged into the stored blocks (no store
    access: safe in a thread)."""
    if not narrow:
        return []
    frame = pd.concat(narrow, ignore_index=True)
    del narrow[:]
    counts = daily_counts(
        frame["msisdn"].to_numpy(),
        frame["day"].to_numpy(),
        frame["cause"].to_numpy(),
        frame["final"].to_numpy(),
        frame["notify_ok"].to_numpy(),
        frame["submitted_ts"].to_numpy(),
    )
    del frame
    return _merge_aggregate_blocks(counts, stored)


def _merge_aggregate_blocks(
    counts: pd.DataFrame, stored: dict[int, dict[int, bytes]]
) -> list[tuple[date, bool, list[dict[str, Any]]]]:
    """Per day (with whether it had blocks): the rows of ``daily_aggregate_blocks`` to
    write, one per (day, MSISDN partition), each added to the stored block if any."""
    msisdn = counts["msisdn"].to_numpy()
    day = counts["day"].to_numpy()
    # Stable, so each (day, part) slice stays sorted by MSISDN.
    order = _stable_order_by(day, msisdn % PARTS, PARTS)
    counts = counts.iloc[order].reset_index(drop=True)
    key = counts["day"].to_numpy().astype(np.int64) * PARTS
    key += counts["msisdn"].to_numpy() % PARTS
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    out: list[tuple[date, bool, list[dict[str, Any]]]] = []
    for day_n in np.unique(day).tolist():
        d = _to_date(int(day_n))
        blocks = stored.get(int(day_n), {})
        rows = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if int(key[a]) // PARTS != day_n:
                continue
            part = int(key[a]) % PARTS
            new = counts.iloc[a:b].drop(columns=["day"])
            if part in blocks:
                new = merge_counts(decode(blocks[part]).to_pandas(), new)
            table = pa.Table.from_pandas(
                new[list(AGGREGATE_SCHEMA.names)],
                schema=AGGREGATE_SCHEMA,
                preserve_index=False,
            )
            rows.append({"day": d, "part": part, "rows": len(new), "data": encode(table, True)})
        out.append((d, bool(blocks), rows))
    return out


def _device_rows(
    seen: pa.Table, stored: dict[int, bytes]
) -> tuple[list[dict[str, Any]], list[int]] | None:
    """The device blocks to write after ``seen`` (newly seen devices) is merged into the
    ``stored`` blocks of the partitions it touches, and which stored blocks they replace;
    None when no device changed (no store access: safe in a thread)."""
    m = seen["msisdn"].to_numpy()
    ts = seen["seen_ts"].to_numpy()
    pos = latest_devices(m, np.ones(len(m), dtype=bool), ts)
    if not len(pos):
        return None
    seen = seen.take(pa.array(pos))  # one row per subscriber, by MSISDN
    new = pa.table(
        {
            "msisdn": seen["msisdn"],
            "imei": seen["imei"],
            "tac": pc.utf8_slice_codeunits(seen["imei"], 0, 8),
            "seen_ts": seen["seen_ts"],
        }
    ).cast(DEVICE_SCHEMA)
    old = [decode(d) for d in stored.values()]
    if old:
        merged, changed = _merge_device_block(
            _by_msisdn(pa.concat_tables([b.cast(DEVICE_SCHEMA) for b in old])), new
        )
    else:
        merged, changed = new, new["msisdn"].to_numpy()
    if not len(changed):
        return None
    dirty = np.unique(changed % DEVICE_PARTS)
    mm = merged["msisdn"].to_numpy()
    part_of = mm % DEVICE_PARTS
    keep = np.isin(part_of, dirty)
    order = np.flatnonzero(keep)[np.argsort(part_of[keep].astype(np.int16), kind="stable")]
    merged = merged.take(pa.array(order))
    part_of = part_of[order]
    starts = np.flatnonzero(np.r_[True, part_of[1:] != part_of[:-1]])
    ends = np.r_[starts[1:], len(part_of)]
    rows = [
        {
            "part": int(part_of[a]),
            "rows": int(b - a),
            "data": encode_framed(merged.slice(a, b - a)),
        }
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    return rows, [r["part"] for r in rows if r["part"] in stored]


class _InlineExecutor:
    """What is submitted, run at once in the calling thread (``ThreadPoolExecutor``'s
    ``submit``, for a fold too small to be worth threads)."""

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., _T], /, *args: Any) -> Future[_T]:
        done: Future[_T] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:  # re-raised by ``result()``, as from a worker thread
            done.set_exception(exc)
        return done


class SqlIngestSession:
    """Implements the ``IngestWriter`` port inside one open SQLAlchemy transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"
        #: The connection's own page cache size while the session's is in force.
        self._cache_size: int | None = None
        #: Whether the session stores chunks of ``_BULK_ROWS`` events or more.
        self._bulk = False
        if self._pg:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_INGEST_LOCK})")
        else:
            # Take the write lock now: blocks are read, merged and rewritten at the end.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        self._narrow: list[pd.DataFrame] = []
        self._editions: list[pd.DataFrame] = []
        self._devices: list[pa.Table] = []
        self._recent = RecentIndexWriter(conn)
        #: SQLite: the new event keys of this session by key partition, sorted.
        self._new_keys: dict[int, npt.NDArray[np.int64]] = {}
        self._parts_stored: dict[int, bool] = {}

    # -- per chunk -----------------------------------------------------------------------

    def add_events(self, events: pd.DataFrame) -> StoredChunk:
        """Store the events whose key is new; duplicates (stored before) are only counted."""
        if events.empty:
            return StoredChunk(0, 0, np.zeros(0, dtype=np.int64))
        if len(events) >= _BULK_ROWS and not self._bulk:
            self._bulk = True
            self._bulk_cache()
        keys = events["event_key"].to_numpy(dtype=np.int64)
        submitted = events["submitted_ts"].to_numpy(dtype=np.int64)
        done_known = events["done_ts"].notna().to_numpy()
        done = events["done_ts"].to_numpy(dtype=np.int64, na_value=0)
        parts = key_partition(done, done_known, submitted)
        new_keys = self._insert_keys(parts, keys)
        duplicates = len(events) - len(new_keys)
        if not new_keys.size:
            return StoredChunk(0, duplicates, new_keys)
        if duplicates:
            keep = np.isin(keys, new_keys)
            events = events.loc[keep]
            submitted, done, done_known = submitted[keep], done[keep], done_known[keep]
        msisdn = msisdn_digits(events["msisdn"])
        day = _day_numbers(events["day"])
        cause = cause_codes(events["cause"])
        final = events["final"].to_numpy(dtype=bool)
        notify_ok = events["notify_ok"].fillna(0).to_numpy(dtype=np.int8) == 1
        self._recent.add(self._write_segments(events, msisdn, day, submitted, done, done_known))
        self._narrow.append(
            pd.DataFrame(
                {
                    "msisdn": msisdn,
                    "day": day,
                    "cause": cause,
                    "final": final,
                    "notify_ok": notify_ok,
                    "submitted_ts": submitted,
                }
            )
        )
        latency = np.where(done_known, done - submitted, -1)
        self._editions.append(
            edition_counts(day, events["edition"], cause, final, notify_ok, latency)
        )
        pos = latest_devices(msisdn, events["imei"].notna().to_numpy(), submitted)
        imei = pa.array(events["imei"], type=pa.string(), from_pandas=True).take(pa.array(pos))
        self._devices.append(
            pa.table({"msisdn": msisdn[pos], "imei": imei, "seen_ts": submitted[pos]})
        )
        return StoredChunk(len(new_keys), duplicates, new_keys)

    def _insert_keys(
        self, parts: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Insert the keys; return those that were not there before. On PostgreSQL one COPY
        and one set-based statement. On SQLite the keys are checked against those stored
        before the session (one look-up per key partition that held any) and against the
        session's own, held in memory and inserted when the session ends (in ``finish``,
        inside the same transaction, which holds the write lock from its start)."""
        raw: Any = self._conn.connection.driver_connection
        if self._pg:
            self._conn.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS _stage_keys (part integer, event_key bigint) "
                "ON COMMIT DELETE ROWS"
            )
            with raw.cursor() as cur:
                with cur.copy("COPY _stage_keys (part, event_key) FROM STDIN") as copy:
                    for row in zip(parts.tolist(), keys.tolist(), strict=True):
                        copy.write_row(row)
                cur.execute(
                    "INSERT INTO event_keys (part, event_key) SELECT part, event_key "
                    "FROM _stage_keys ON CONFLICT DO NOTHING RETURNING event_key"
                )
                new = [r[0] for r in cur.fetchall()]
                cur.execute("DELETE FROM _stage_keys")
            return np.asarray(new, dtype=np.int64)
        new_parts: list[npt.NDArray[np.int64]] = []
        cur = raw.cursor()
        try:
            for part in np.unique(parts).tolist():
                chunk = np.sort(keys[parts == part])
                repeated = chunk[1:] == chunk[:-1]
                if repeated.any():
                    chunk = chunk[np.r_[True, ~repeated]]
                if self._stored_before(cur, part):
                    stored = cur.execute(
                        "SELECT k.event_key FROM json_each(?) AS j CROSS JOIN event_keys AS k "
                        "ON k.part = ? AND k.event_key = j.value",
                        (_json_ints(chunk), part),
                    ).fetchall()
                    if stored:
                        old = np.asarray([r[0] for r in stored], dtype=np.int64)
                        chunk = np.setdiff1d(chunk, old, assume_unique=True)
                held = self._new_keys.get(part)
                if held is not None:
                    at = np.minimum(np.searchsorted(held, chunk), len(held) - 1)
                    chunk = chunk[held[at] != chunk]
                    # Two sorted runs: the stable sort merges them in one pass.
                    self._new_keys[part] = np.sort(np.concatenate([held, chunk]), kind="stable")
                elif chunk.size:
                    self._new_keys[part] = chunk
                new_parts.append(chunk)
        finally:
            cur.close()
        return np.concatenate(new_parts) if new_parts else np.zeros(0, dtype=np.int64)

    def _stored_before(self, cur: Any, part: int) -> bool:
        """Whether the key partition held keys before this session (asked once a session:
        the session's own keys are only inserted when it ends)."""
        if part not in self._parts_stored:
            found = cur.execute(
                "SELECT 1 FROM event_keys WHERE part = ? LIMIT 1", (part,)
            ).fetchone()
            self._parts_stored[part] = found is not None
        return self._parts_stored[part]

    def _write_new_keys(self) -> None:
        """Insert the session's new keys (SQLite), sorted, so that the inserts walk the key
        B-tree in order instead of landing all over it chunk after chunk (half the cost)."""
        if not self._new_keys:
            return
        raw: Any = self._conn.connection.driver_connection
        cur = raw.cursor()
        insert = "INSERT INTO event_keys (part, event_key) SELECT ?, value FROM json_each(?)"
        try:
            for part, held in sorted(self._new_keys.items()):
                for a in range(0, len(held), _KEY_BATCH):
                    cur.execute(insert, (part, _json_ints(held[a : a + _KEY_BATCH])))
        finally:
            cur.close()
        self._new_keys = {}

    def _write_segments(
        self,
        events: pd.DataFrame,
        msisdn: npt.NDArray[np.int64],
        day: npt.NDArray[np.int32],
        submitted: npt.NDArray[np.int64],
        done: npt.NDArray[np.int64],
        done_known: npt.NDArray[np.bool_],
    ) -> pa.Table:
        """Write the events as segments; returns them as one table (``EVENT_SCHEMA``)."""
        order = _segment_order(day, msisdn, submitted)
        n = len(order)
        columns: dict[str, pa.Array] = {}
        for field in EVENT_SCHEMA:
            name = field.name
            if name == "msisdn":
                columns[name] = pa.array(msisdn[order])
            elif name == "submitted_ts":
                columns[name] = pa.array(submitted[order])
            elif name == "done_ts":
                columns[name] = pa.array(done[order], mask=~done_known[order])
            elif name == "day":
                columns[name] = pa.array(day[order], type=pa.int32()).cast(pa.date32())
            elif name == "final":
                columns[name] = pa.array(events[name].to_numpy(dtype=bool)[order])
            elif name == "notify_ok":
                col = events[name]
                columns[name] = pa.array(
                    col.fillna(0).to_numpy(dtype=np.int8)[order],
                    mask=col.isna().to_numpy()[order],
                )
            elif name == "event_key":
                columns[name] = pa.array(events[name].to_numpy(dtype=np.int64)[order])
            elif pa.types.is_dictionary(field.type):
                # Few distinct values: int32 codes with a small dictionary (cheap to sort,
                # compresses to almost nothing).
                codes, uniques = pd.factorize(events[name], use_na_sentinel=True)
                codes = np.asarray(codes, dtype=np.int32)[order]
                columns[name] = pa.DictionaryArray.from_arrays(
                    pa.array(codes, mask=codes < 0),
                    pa.array(np.asarray(uniques, dtype=object), type=pa.string()),
                )
            else:
                arr = pa.array(events[name], type=pa.string(), from_pandas=True)
                columns[name] = arr.take(pa.array(order))
        table = pa.Table.from_arrays(list(columns.values()), schema=EVENT_SCHEMA)
        sorted_day, sorted_m, sorted_ts = day[order], msisdn[order], submitted[order]
        # Segment boundaries: every SEGMENT_ROWS rows and wherever the day changes.
        day_starts = np.flatnonzero(np.r_[True, sorted_day[1:] != sorted_day[:-1]])
        bounds: list[int] = []
        for i, start in enumerate(day_starts.tolist()):
            end = int(day_starts[i + 1]) if i + 1 < len(day_starts) else n
            bounds.extend(range(start, end, SEGMENT_ROWS))
        bounds.append(n)
        starts = np.asarray(bounds[:-1])
        rows = []
        ts_min = np.minimum.reduceat(sorted_ts, starts)
        ts_max = np.maximum.reduceat(sorted_ts, starts)
        for j, (a, b) in enumerate(itertools.pairwise(bounds)):
            rows.append(
                {
                    "day": _to_date(int(sorted_day[a])),
                    "msisdn_min": int(sorted_m[a]),
                    "msisdn_max": int(sorted_m[b - 1]),
                    "ts_min": int(ts_min[j]),
                    "ts_max": int(ts_max[j]),
                    "rows": b - a,
                    "data": encode(table.slice(a, b - a)),
                }
            )
        self._conn.execute(event_segments.insert(), rows)
        return table

    def add_quarantine(self, batch_id: str, records: Sequence[QuarantinedRecord]) -> None:
        """Rejected rows, through the driver (``bulk_load``): a province-day quarantines tens
        of thousands, and SQLAlchemy's per-row parameter processing cost three times the
        insert itself (on the thread that stores the chunks)."""
        if not records:
            return
        bulk_load(
            self._conn,
            quarantine.name,
            ("batch_id", "source", "line", "reason", "raw"),
            ((batch_id, r.source, r.line, r.reason, r.raw[:2000]) for r in records),
        )

    def record_unknown_codes(self, counts: dict[tuple[str, str], int], seen_at: datetime) -> None:
        table = unknown_codes
        for (ns, code), n in counts.items():
            updated = self._conn.execute(
                table.update()
                .where(table.c.namespace == ns[:32], table.c.code == code[:64])
                .values(count=table.c.count + n, last_seen=seen_at)
            ).rowcount
            if not updated:
                self._conn.execute(
                    table.insert().values(
                        namespace=ns[:32],
                        code=code[:64],
                        count=n,
                        first_seen=seen_at,
                        last_seen=seen_at,
                    )
                )

    # -- at the end ----------------------------------------------------------------------

    def finish(self) -> None:
        """Fold everything this session stored into aggregates, devices, edition days and the
        recent-events index.

        The fold is split by what needs the connection. This thread reads the stored blocks
        the fold merges into, then inserts the session's event keys (SQLite runs without the
        GIL); meanwhile two worker threads compute, without touching the store, the blocks of
        the recent-events index and the merged aggregate and device blocks (Arrow and numpy
        release the GIL). The results are written afterwards, on this connection, in the
        order the statements always ran (keys, aggregates, devices, editions, recent index).
        Before, this thread computed the aggregates and devices itself after the key insert,
        and the tail of an ingest ran on about one and a half cores."""
        pending = self._recent.start_flush()
        narrow, self._narrow = self._narrow, []
        devices, self._devices = self._devices, []
        editions, self._editions = self._editions, []
        seen = pa.concat_tables(devices) if devices else None
        del devices
        stored_aggregates = self._stored_aggregates(narrow)
        stored_devices = self._stored_devices(seen) if seen is not None else {}
        # A few live reports: the fold is less work than starting the threads.
        pool = ThreadPoolExecutor(2, "ingest-fold") if self._bulk else _InlineExecutor()
        with pool:
            blocks = pool.submit(build_generation, pending) if pending is not None else None
            aggregates = pool.submit(_aggregate_rows, narrow, stored_aggregates)
            device_rows = (
                pool.submit(_device_rows, seen, stored_devices) if seen is not None else None
            )
            del narrow, seen
            self._write_new_keys()
            self._write_aggregates(aggregates.result())
            if device_rows is not None:
                self._write_devices(device_rows.result())
            if editions:
                self._merge_editions(pd.concat(editions, ignore_index=True))
            if blocks is not None:
                self._recent.write(blocks.result())

    def _bulk_cache(self) -> None:
        """The session's small page cache (SQLite; see ``_STREAM_CACHE_KIB``), once."""
        if self._pg or self._cache_size is not None:
            return
        cache = int(self._conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
        if cache < -_STREAM_CACHE_KIB:  # in KiB, and larger than the session's
            self._cache_size = cache
            self._conn.exec_driver_sql(f"PRAGMA cache_size=-{_STREAM_CACHE_KIB}")

    def restore_cache(self) -> None:
        """Give the connection back its own page cache size (SQLite; once is enough). The
        store calls it when the session ends, failed or not: the connection is pooled."""
        if self._cache_size is not None:
            self._conn.exec_driver_sql(f"PRAGMA cache_size={self._cache_size}")
            self._cache_size = None

    def _stored_aggregates(self, narrow: list[pd.DataFrame]) -> dict[int, dict[int, bytes]]:
        """The stored aggregate blocks of the days in ``narrow``, by day number and part."""
        if not narrow:
            return {}
        days = np.unique(np.concatenate([np.unique(f["day"].to_numpy()) for f in narrow]))
        return {day: self._stored_aggregate_day(day) for day in days.tolist()}

    def _stored_aggregate_day(self, day: int) -> dict[int, bytes]:
        t = daily_aggregate_blocks
        q = sa.select(t.c.part, t.c.data).where(t.c.day == _to_date(day))
        return {int(part): data for part, data in self._conn.execute(q)}

    def _merge_aggregates(self, counts: pd.DataFrame) -> None:
        """Per (day, MSISDN partition): add to the stored block, or write a new one."""
        days = np.unique(counts["day"].to_numpy()).tolist()
        stored = {day: self._stored_aggregate_day(day) for day in days}
        self._write_aggregates(_merge_aggregate_blocks(counts, stored))

    def _write_aggregates(self, days: list[tuple[date, bool, list[dict[str, Any]]]]) -> None:
        """Per day: the blocks that replace stored ones are deleted first, then all inserted."""
        t = daily_aggregate_blocks
        for d, had_blocks, rows in days:
            if had_blocks:
                self._conn.execute(
                    t.delete().where(t.c.day == d, t.c.part.in_([r["part"] for r in rows]))
                )
            self._conn.execute(t.insert(), rows)

    def _stored_devices(self, seen: pa.Table) -> dict[int, bytes]:
        """The stored device blocks of the partitions that ``seen`` touches."""
        t = device_blocks
        # The partitions present, in order: a count per partition, not a sort of the rows.
        per_part = np.bincount(seen["msisdn"].to_numpy() % DEVICE_PARTS, minlength=DEVICE_PARTS)
        touched = np.flatnonzero(per_part)
        q = sa.select(t.c.part, t.c.data)
        if len(touched) <= 500:  # a few live reports: their partitions only
            q = q.where(t.c.part.in_(touched.tolist()))
        wanted = set(touched.tolist())
        return {int(p): d for p, d in self._conn.execute(q) if int(p) in wanted}

    def _merge_devices(self, seen: pa.Table) -> None:
        """A device row changes only when the subscriber shows up with another IMEI; only the
        blocks that hold such a change are rewritten."""
        self._write_devices(_device_rows(seen, self._stored_devices(seen)))

    def _write_devices(self, change: tuple[list[dict[str, Any]], list[int]] | None) -> None:
        if change is None:
            return
        t = device_blocks
        rows, rewritten = change
        for i in range(0, len(rewritten), 1000):
            self._conn.execute(t.delete().where(t.c.part.in_(rewritten[i : i + 1000])))
        self._conn.execute(t.insert(), rows)

    def _merge_editions(self, editions: pd.DataFrame) -> None:
        t = edition_daily
        if len(editions) > 1 and editions.duplicated(["day", "edition"]).any():
            editions = editions.groupby(["day", "edition"], sort=True).sum().reset_index()
        names = [str(c) for c in editions.columns if c not in ("day", "edition")]
        counts = editions[names].to_numpy(dtype=np.int64)
        for day_no, edition_name, row in zip(
            editions["day"].to_numpy(), editions["edition"].to_numpy(), counts, strict=True
        ):
            day = _to_date(int(day_no))
            edition = str(edition_name)[:80]
            values = dict(zip(names, row.tolist(), strict=True))
            old = self._conn.execute(
                sa.select(t).where(t.c.day == day, t.c.edition == edition)
            ).first()
            if old is not None:
                for k in values:
                    values[k] += int(old._mapping[k])
                self._conn.execute(t.delete().where(t.c.day == day, t.c.edition == edition))
            self._conn.execute(t.insert().values(day=day, edition=edition, **values))


# The count columns are the contract between aggregates.py and the block schema.
assert tuple(AGGREGATE_SCHEMA.names[1:-1]) == COUNT_COLUMNS
