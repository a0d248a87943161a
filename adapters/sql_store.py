"""The SQL store (SQLAlchemy 2): SQLite by default, PostgreSQL in production.

Bulk paths use each driver's fastest loader (executemany on SQLite, COPY on PostgreSQL) into
staging tables, then one set-based statement per step, all inside one transaction per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from mmsq.adapters.sql_schema import (
    daily_aggregates,
    delivery_events,
    ingest_batches,
    quarantine,
    unknown_codes,
)
from mmsq.domain import CAUSE_CLASSES, QuarantinedRecord
from mmsq.ingest import AGGREGATE_COUNTS, EVENT_COLUMNS
from mmsq.ports import StoredChunk

__all__ = ["SchemaNotCurrentError", "SqlStore", "create_engine_for"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _aggregate_sql() -> str:
    """Fold the staged (new) events into the per-subscriber daily counters, in one statement."""
    counts = {
        "attempts": "COUNT(*)",
        "final": "SUM(CASE WHEN final THEN 1 ELSE 0 END)",
        "delivered": "SUM(CASE WHEN cause = 'delivered' THEN 1 ELSE 0 END)",
        "notified_not_fetched": (
            "SUM(CASE WHEN notify_ok = 1 AND cause = 'not_fetched' THEN 1 ELSE 0 END)"
        ),
    }
    counts.update(
        {f"c_{c}": f"SUM(CASE WHEN cause = '{c}' THEN 1 ELSE 0 END)" for c in CAUSE_CLASSES}
    )
    assert tuple(counts) == AGGREGATE_COUNTS
    names = ", ".join([*counts, "last_ts"])
    exprs = ", ".join([*counts.values(), "MAX(submitted_ts)"])
    sets = ", ".join(
        [f"{c} = daily_aggregates.{c} + excluded.{c}" for c in counts]
        + [
            "last_ts = CASE WHEN excluded.last_ts > daily_aggregates.last_ts "
            "THEN excluded.last_ts ELSE daily_aggregates.last_ts END"
        ]
    )
    return (
        f"INSERT INTO daily_aggregates (msisdn, day, {names}) "
        f"SELECT msisdn, day, {exprs} FROM _stage_events WHERE true GROUP BY msisdn, day "
        f"ON CONFLICT (msisdn, day) DO UPDATE SET {sets}"
    )


_AGGREGATE_SQL = _aggregate_sql()
# A device row changes only when the subscriber shows up with another IMEI (a handset swap).
_DEVICES_UPSERT = (
    "ON CONFLICT (msisdn) DO UPDATE SET imei = excluded.imei, tac = excluded.tac, "
    "seen_ts = excluded.seen_ts WHERE excluded.imei <> subscriber_devices.imei "
    "AND excluded.seen_ts >= subscriber_devices.seen_ts"
)
# The newest IMEI per subscriber among the new events. SQLite returns the row of MAX() for
# bare columns; PostgreSQL says the same with DISTINCT ON.
_DEVICES_SQL_SQLITE = (
    "INSERT INTO subscriber_devices (msisdn, imei, tac, seen_ts) "
    "SELECT msisdn, imei, substr(imei, 1, 8), MAX(submitted_ts) FROM _stage_events "
    "WHERE imei IS NOT NULL GROUP BY msisdn " + _DEVICES_UPSERT
)
_DEVICES_SQL_PG = (
    "INSERT INTO subscriber_devices (msisdn, imei, tac, seen_ts) "
    "SELECT DISTINCT ON (msisdn) msisdn, imei, substr(imei, 1, 8), submitted_ts "
    "FROM _stage_events WHERE imei IS NOT NULL ORDER BY msisdn, submitted_ts DESC "
    + _DEVICES_UPSERT
)


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


def _column(series: pd.Series) -> list[Any]:
    if series.hasnans if hasattr(series, "hasnans") else series.isna().any():
        return series.astype(object).where(series.notna(), None).tolist()
    return series.tolist()


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    return zip(*(_column(frame[c]) for c in columns), strict=True)


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

    # -- bulk helpers --------------------------------------------------------------------

    def _load(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        raw = conn.connection.driver_connection
        cols = ", ".join(columns)
        if self.dialect == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(columns))
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()

    def _temp_table(self, conn: Connection, name: str, like: str, columns: Sequence[str]) -> None:
        cols = ", ".join(columns)
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT {cols} FROM {like} WITH NO DATA"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT {cols} FROM {like} WHERE 0"
            )
        conn.exec_driver_sql(f"DELETE FROM {name}")

    # -- EventStore ----------------------------------------------------------------------

    def ingest_events(self, events: pd.DataFrame) -> StoredChunk:
        if events.empty:
            return StoredChunk(0, 0)
        with self.engine.begin() as conn:
            self._temp_table(conn, "_stage_events", "delivery_events", EVENT_COLUMNS)
            self._load(conn, "_stage_events", EVENT_COLUMNS, _rows(events, EVENT_COLUMNS))
            duplicates = conn.exec_driver_sql(
                "DELETE FROM _stage_events WHERE event_key IN "
                "(SELECT event_key FROM delivery_events)"
            ).rowcount
            stored = len(events) - duplicates
            if stored == 0:
                return StoredChunk(0, duplicates)
            cols = ", ".join(EVENT_COLUMNS)
            conn.exec_driver_sql(
                f"INSERT INTO delivery_events ({cols}) SELECT {cols} FROM _stage_events"
            )
            conn.exec_driver_sql(_AGGREGATE_SQL)
            conn.exec_driver_sql(
                _DEVICES_SQL_PG if self.dialect == "postgresql" else _DEVICES_SQL_SQLITE
            )
        return StoredChunk(stored, duplicates)

    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None:
        if not records:
            return
        with self.engine.begin() as conn:
            conn.execute(
                quarantine.insert(),
                [
                    {
                        "batch_id": batch_id,
                        "source": r.source,
                        "line": r.line,
                        "reason": r.reason,
                        "raw": r.raw[:2000],
                    }
                    for r in records
                ],
            )

    def record_unknown_codes(self, counts: dict[tuple[str, str], int], seen_at: datetime) -> None:
        if not counts:
            return
        table = unknown_codes
        with self.engine.begin() as conn:
            for (ns, code), n in counts.items():
                updated = conn.execute(
                    table.update()
                    .where(table.c.namespace == ns[:32], table.c.code == code[:64])
                    .values(count=table.c.count + n, last_seen=seen_at)
                ).rowcount
                if not updated:
                    conn.execute(
                        table.insert().values(
                            namespace=ns[:32],
                            code=code[:64],
                            count=n,
                            first_seen=seen_at,
                            last_seen=seen_at,
                        )
                    )

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
        """Delete raw events submitted before ``before``; aggregates are kept."""
        cutoff = int(before.timestamp())
        with self.engine.begin() as conn:
            return conn.execute(
                delivery_events.delete().where(delivery_events.c.submitted_ts < cutoff)
            ).rowcount

    # -- queries -------------------------------------------------------------------------

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
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(daily_aggregates).order_by(
                    daily_aggregates.c.msisdn, daily_aggregates.c.day
                )
            )
            return [dict(r._mapping) for r in rows]
