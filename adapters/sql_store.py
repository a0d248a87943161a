"""The SQL store (SQLAlchemy 2): SQLite by default, PostgreSQL in production.

Events, aggregates and devices are stored as columnar blocks (see ``sql_event_schema``); an
ingest runs in one ``SqlIngestSession`` transaction per source. Read them through the query
methods here (``recent_events``, ``daily_aggregates``, ``devices``, ``edition_stats``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from mmsq.adapters.event_blocks import (
    DEVICE_PARTS,
    EVENT_SCHEMA,
    PARTS,
    decode,
    decode_columns,
    encode,
    msisdn_text,
)
from mmsq.adapters.recent_blocks import RecentIndexWriter, read_recent
from mmsq.adapters.sql_event_schema import (
    daily_aggregate_blocks,
    device_blocks,
    edition_daily,
    event_keys,
    event_segments,
)
from mmsq.adapters.sql_ingest_session import SqlIngestSession
from mmsq.adapters.sql_read_scope import read_connection, read_rows
from mmsq.adapters.sql_schema import ingest_batches, quarantine
from mmsq.domain import QuarantinedRecord
from mmsq.ingest import AGGREGATE_COUNTS
from mmsq.ports import StoredChunk

__all__ = ["SchemaNotCurrentError", "SqlStore", "create_engine_for"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_EPOCH = date(1970, 1, 1)


class SchemaNotCurrentError(RuntimeError):
    """The database is not at the schema this version of mmsq needs."""


def create_engine_for(url: str, echo: bool = False, **pool: Any) -> Engine:
    """An engine with the pragmas mmsq needs on SQLite (WAL, busy timeout); ``pool`` passes
    pool sizing (``pool_size``, ``max_overflow``) to SQLAlchemy."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, future=True, **pool)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-262144")
            cur.close()

    return engine


#: Built once (a diagnosis reads it per request).
_DEVICE_BLOCK = sa.select(device_blocks.c.data).where(device_blocks.c.part == sa.bindparam("part"))


def device_block_params(msisdn: int) -> dict[str, int]:
    """The parameters of ``_DEVICE_BLOCK`` for a subscriber (digits of the E.164 number)."""
    return {"part": msisdn % DEVICE_PARTS}


class SqlStore:
    """Implements the EventStore port on a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str, echo: bool = False) -> SqlStore:
        return cls(create_engine_for(url, echo))

    def close(self) -> None:
        self.engine.dispose()

    # -- schema --------------------------------------------------------------------------

    def _alembic(self, conn: Connection) -> AlembicConfig:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; returns (revision before, revision after)."""
        with self.engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(self._alembic(conn), "head")
            after = MigrationContext.configure(conn).get_current_revision()
        return before, after or ""

    def check_schema(self) -> None:
        """Raise SchemaNotCurrentError unless the database is at the newest revision."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(self._alembic(conn)).get_current_head()
        if current != head:
            raise SchemaNotCurrentError(
                f"database schema is at {current or 'nothing'}, mmsq needs {head}: "
                "run 'mmsq db upgrade'"
            )

    # -- EventStore ----------------------------------------------------------------------

    @contextmanager
    def ingest_session(self) -> Iterator[SqlIngestSession]:
        with self.engine.begin() as conn:
            session = SqlIngestSession(conn)
            try:
                yield session
                session.finish()
            finally:
                # The pooled connection outlives the session; a failed one is rolled back.
                with contextlib.suppress(sa.exc.DBAPIError):
                    session.restore_cache()

    def ingest_events(self, events: pd.DataFrame) -> StoredChunk:
        """Store one frame of events in its own transaction."""
        with self.ingest_session() as session:
            stored: StoredChunk = session.add_events(events)
        return stored

    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None:
        with self.ingest_session() as session:
            session.add_quarantine(batch_id, records)

    def record_unknown_codes(self, counts: dict[tuple[str, str], int], seen_at: datetime) -> None:
        with self.ingest_session() as session:
            session.record_unknown_codes(counts, seen_at)

    def start_batch(self, batch_id: str, source: str, started_at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                ingest_batches.insert().values(
                    batch_id=batch_id, kind=source, started_at=started_at
                )
            )

    def finish_batch(
        self, batch_id: str, finished_at: datetime, summary: dict[str, object]
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                ingest_batches.update()
                .where(ingest_batches.c.batch_id == batch_id)
                .values(finished_at=finished_at, summary=summary)
            )

    def purge_events(self, before: datetime) -> int:
        """Delete raw events submitted before ``before``; aggregates are kept.

        Whole segments go at once; a segment that straddles the cutoff is rewritten. Event
        keys go with them (a day later, as keys are partitioned by the done day), so a file
        older than the retention would be stored again if re-ingested, as before.
        """
        cutoff = int(before.timestamp())
        t = event_segments
        deleted = 0
        with self.engine.begin() as conn:
            straddling = conn.execute(
                sa.select(t).where(t.c.ts_min < cutoff, t.c.ts_max >= cutoff)
            ).all()
            deleted += int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(t.c.rows), 0)).where(t.c.ts_max < cutoff)
                ).scalar_one()
            )
            conn.execute(t.delete().where(t.c.ts_max < cutoff))
            for seg in straddling:
                table = decode(seg.data)
                kept = table.filter(pc.greater_equal(table["submitted_ts"], cutoff))
                deleted += seg.rows - kept.num_rows
                ts = kept["submitted_ts"]
                conn.execute(
                    t.update()
                    .where(t.c.id == seg.id)
                    .values(
                        rows=kept.num_rows,
                        ts_min=pc.min(ts).as_py(),
                        data=encode(kept),
                    )
                )
            RecentIndexWriter(conn).purge(cutoff)
            day = cutoff // 86400 - 1
            conn.execute(
                event_keys.delete().where(
                    sa.or_(
                        sa.and_(event_keys.c.part >= 0, event_keys.c.part < day),
                        sa.and_(event_keys.c.part < 0, event_keys.c.part > -1 - day),
                    )
                )
            )
        return deleted

    # -- queries -------------------------------------------------------------------------

    def recent_events(self, msisdn: str, limit: int = 20) -> list[dict[str, Any]]:
        """A subscriber's newest events (E.164 MSISDN), newest first.

        Read from the recent-events index (the last ``RECENT_DAYS`` days, a few small blocks
        of one partition); when those days hold fewer than ``limit``, the rest comes from the
        event segments older than them.
        """
        digits = msisdn.strip().lstrip("+")
        if not digits.isdigit() or limit <= 0:
            return []
        m = int(digits)
        with read_connection(self.engine) as conn:
            rows: list[dict[str, Any]]
            rows, cutoff = read_recent(conn, m, limit)
            if len(rows) < limit:
                rows += self._recent_from_segments(conn, m, limit - len(rows), before=cutoff)
        for r in rows:
            r["msisdn"] = "+" + digits
        return rows

    def _recent_from_segments(
        self, conn: Connection, m: int, limit: int, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The segments whose MSISDN range holds the number, newest day first, until
        ``limit`` events (submitted before ``before``, when given) are found (tens of
        milliseconds on a province's month)."""
        t = event_segments
        found: list[pa.Table] = []
        count = 0
        current_day: date | None = None
        where = [t.c.msisdn_min <= m, t.c.msisdn_max >= m]
        if before is not None:
            where.append(t.c.ts_min < before)
        segs = conn.execute(
            sa.select(t.c.id, t.c.day).where(*where).order_by(t.c.day.desc(), t.c.id.desc())
        ).all()
        for seg_id, day in segs:
            if count >= limit and day != current_day:
                break
            current_day = day
            data = conn.execute(sa.select(t.c.data).where(t.c.id == seg_id)).scalar_one()
            table = decode(data)
            mask = pc.equal(table["msisdn"], m)
            if before is not None:
                mask = pc.and_(mask, pc.less(table["submitted_ts"], before))
            hit = table.filter(mask)
            if hit.num_rows:
                found.append(hit)
                count += hit.num_rows
        rows = [r for hit in found for r in hit.to_pylist()]
        rows.sort(key=lambda r: (r["submitted_ts"], r["done_ts"] or 0), reverse=True)
        return rows[:limit]

    def daily_aggregates(
        self,
        first_day: date,
        last_day: date,
        columns: Sequence[str] | None = None,
        *,
        msisdns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Per (msisdn, day) counters for [first_day, last_day], sorted by day: ``msisdn``
        (E.164, categorical), ``day`` (datetime64), ``AGGREGATE_COUNTS`` (int32) and
        ``last_ts`` (or only ``columns`` of those, to save memory on long windows).
        ``msisdns`` (E.164) limits the rows to those subscribers, reading only their
        partitions' blocks.

        Blocks are decoded one at a time straight into preallocated arrays, so the peak
        memory is about the frame itself.
        """
        wanted = [*AGGREGATE_COUNTS, "last_ts"] if columns is None else list(columns)
        unknown = set(wanted) - {*AGGREGATE_COUNTS, "last_ts"}
        if unknown:
            raise ValueError(f"not an aggregate column: {', '.join(sorted(unknown))}")
        t = daily_aggregate_blocks
        window: tuple[Any, ...] = (t.c.day >= first_day, t.c.day <= last_day)
        only: pa.Array | None = None
        if msisdns is not None:
            digits = [m.strip().lstrip("+") for m in msisdns]
            ints = sorted({int(d) for d in digits if d.isdigit()})
            only = pa.array(ints, type=pa.int64())
            window = (*window, t.c.part.in_(sorted({m % PARTS for m in ints})))
        with self.engine.connect() as conn:
            blocks = conn.execute(
                sa.select(t.c.day, t.c.part, t.c.rows).where(*window).order_by(t.c.day, t.c.part)
            ).all()
            total = sum(b.rows for b in blocks)
            msisdn = np.empty(total, dtype=np.int64)
            day = np.empty(total, dtype="datetime64[s]")
            out = {
                c: np.empty(total, dtype=np.int64 if c == "last_ts" else np.int32) for c in wanted
            }
            at = 0
            for blk in blocks:
                data = conn.execute(
                    sa.select(t.c.data).where(t.c.day == blk.day, t.c.part == blk.part)
                ).scalar_one()
                table = decode(data)
                if only is not None:
                    table = table.filter(pc.is_in(table["msisdn"], value_set=only))
                end = at + table.num_rows
                msisdn[at:end] = table["msisdn"].to_numpy()
                day[at:end] = np.datetime64(blk.day, "s")
                for c in wanted:
                    if c in table.column_names:
                        out[c][at:end] = table[c].to_numpy()
                    else:  # a counter added after this block was written
                        out[c][at:end] = 0
                at = end
        if at < total:  # rows filtered out by ``msisdns``
            msisdn, day = msisdn[:at], day[:at]
            out = {c: v[:at] for c, v in out.items()}
        codes, uniques = pd.factorize(msisdn)
        del msisdn
        columns_out: dict[str, Any] = {
            "msisdn": pd.Categorical.from_codes(
                codes,
                dtype=pd.CategoricalDtype(msisdn_text(pa.array(uniques)).to_pandas()),
                validate=False,
            ),
            "day": day,
        }
        columns_out.update(out)
        return pd.DataFrame(columns_out, copy=False)

    def scan_events(
        self, first_day: date, last_day: date, columns: Sequence[str]
    ) -> Iterator[pa.Table]:
        """The raw events of the local days [first_day, last_day], one Arrow table per segment
        (day order), holding only ``columns`` of ``EVENT_SCHEMA`` (the other columns are not
        decompressed). One segment is in memory at a time: aggregate as you go.

        Text columns may be dictionary-encoded or plain, depending on when the segment was
        written; compare values, not dictionary indices.
        """
        unknown = set(columns) - set(EVENT_SCHEMA.names)
        if unknown:
            raise ValueError(f"not an event column: {', '.join(sorted(unknown))}")
        t = event_segments
        with self.engine.connect() as conn:
            ids = conn.execute(
                sa.select(t.c.id)
                .where(t.c.day >= first_day, t.c.day <= last_day)
                .order_by(t.c.day, t.c.id)
            ).all()
            for (seg_id,) in ids:
                data = conn.execute(sa.select(t.c.data).where(t.c.id == seg_id)).scalar_one()
                yield decode_columns(data, columns)

    def devices(self) -> pd.DataFrame:
        """The latest device of every subscriber: msisdn (E.164), imei, tac, seen_ts."""
        with self.engine.connect() as conn:
            blocks = [decode(d) for (d,) in conn.execute(sa.select(device_blocks.c.data))]
        if not blocks:
            return pd.DataFrame(columns=["msisdn", "imei", "tac", "seen_ts"])
        table = pa.concat_tables(blocks)
        table = table.set_column(0, "msisdn", msisdn_text(table["msisdn"]))
        frame: pd.DataFrame = table.to_pandas()
        return frame.sort_values("msisdn", ignore_index=True)

    def device(self, msisdn: str) -> dict[str, Any] | None:
        """The latest device of one subscriber, or None."""
        digits = msisdn.strip().lstrip("+")
        if not digits.isdigit():
            return None
        m = int(digits)
        with read_connection(self.engine) as conn:
            rows = read_rows(conn, _DEVICE_BLOCK, device_block_params(m))
        data = rows[0][0] if rows else None
        if data is None:
            return None
        table = decode(data)
        at = int(np.searchsorted(table["msisdn"].to_numpy(), m))  # a block is by MSISDN
        if at == table.num_rows or table["msisdn"][at].as_py() != m:
            return None
        # One value per column (a one-row ``to_pylist`` costs several times more).
        row: dict[str, Any] = {
            n: c[at].as_py() for n, c in zip(table.column_names, table.columns, strict=True)
        }
        row["msisdn"] = "+" + digits
        return row

    def edition_stats(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Per (day, edition): counters, and the submit-to-done latency of delivered events
        (``latency_n``, ``latency_sum_s``, histogram ``lat_<i>`` over ``LATENCY_EDGES_S``)."""
        t = edition_daily
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.day >= first_day, t.c.day <= last_day)
                .order_by(t.c.day, t.c.edition)
            ).all()
        return pd.DataFrame([dict(r._mapping) for r in rows], columns=[c.name for c in t.c])

    def event_count(self) -> int:
        """How many raw events are held."""
        t = event_segments
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.c.rows), 0))).scalar_one()
            )

    def quarantine_rows(self, batch_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(quarantine).order_by(quarantine.c.id)
        if batch_id:
            q = q.where(quarantine.c.batch_id == batch_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def daily_rows(self) -> list[dict[str, Any]]:
        """Every daily aggregate row, sorted by (msisdn, day), as plain dicts (for tests/tools)."""
        frame = self.daily_aggregates(date.min, date.max)
        if frame.empty:
            return []
        frame["msisdn"] = frame["msisdn"].astype(str)
        frame["day"] = frame["day"].dt.date
        frame = frame.sort_values(["msisdn", "day"], ignore_index=True)
        return [
            {str(k): (int(v) if isinstance(v, np.integer) else v) for k, v in r.items()}
            for r in frame.to_dict("records")
        ]
