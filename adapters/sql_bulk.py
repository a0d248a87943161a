"""Bulk loading into SQL tables: COPY on PostgreSQL, ``executemany`` on SQLite.

Shared by the stores that stage rows before one set-based upsert (subscriptions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

__all__ = ["SqlBulkLoad", "bulk_load", "frame_rows"]


def _column(series: pd.Series) -> list[Any]:
    """A column as Python values, missing ones as None (what both drivers take as NULL)."""
    if series.isna().any():
        return series.astype(object).where(series.notna(), None).tolist()
    return series.tolist()


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    """Rows of ``frame`` restricted to ``columns``, as tuples, built column by column."""
    return zip(*(_column(frame[c]) for c in columns), strict=True)


def bulk_load(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """``rows`` into ``table`` through the driver, inside ``conn``'s transaction: COPY on
    PostgreSQL, ``executemany`` on SQLite (no per-row parameter processing by SQLAlchemy)."""
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    finally:
        cur.close()


class SqlBulkLoad:
    """Mixin for a store with ``dialect``: bulk row loads and staging tables."""

    dialect: str

    def _load(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        bulk_load(conn, table, columns, rows)

    def _temp_table(self, conn: Connection, name: str, like: str, columns: Sequence[str]) -> None:
        """An empty temporary table ``name`` with ``columns`` of ``like``."""
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
