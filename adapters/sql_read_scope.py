"""One pooled connection, and on PostgreSQL one round trip, for the look-ups of one request.

A diagnosis reads one subscriber through five adapters: subscriptions, recent events, device,
recovery state and transitions, resends. Each used to check a connection out of the pool and
back in, and to send its statement and wait for the answer on its own: six round trips, each
with its system calls and thread wake-ups on both sides, which on a busy machine cost more
than the statements themselves.

``SqlReadScope`` opens one connection for a block of reads and makes it the *ambient* read
connection of the current context (a ``ContextVar``: each thread and each asyncio task has
its own). Adapters take their read connections through ``read_connection(engine)``, which
returns the ambient one when it belongs to the same pool, and a connection of their own
otherwise (outside a scope, or on another database). Only single-statement reads use it:
writes keep their own transactions.

On PostgreSQL a scope opened for one subject (an MSISDN) also *prefetches*: the statements it
was given (``Prefetch``: a statement and its parameters for the subject) are read by one
statement, each as a subquery whose columns are aggregated into arrays (one row in all,
typed arrays in binary, so that every value keeps its type; a subquery's order is kept by
``array_agg``). That is one round trip, one statement to plan and run instead of six (psycopg's
pipeline mode saved the waits but not the client's work per statement). An adapter asks
``read_rows`` (or ``prefetched``) for its statement and parameters: it gets the kept rows when
they match, at most once, and otherwise runs the statement itself. A statement the scope did
not foresee therefore costs only its own round trip, and a result is never reused.

Rows fetched this way are the driver's values (psycopg's types, which are SQLAlchemy's for
the columns read here) in tuples with attribute access and ``_mapping``, like SQLAlchemy's
rows. The scope's connection is in autocommit on PostgreSQL, so each statement reads a
snapshot of its own, as on separate connections. SQLite has no round trips to save: there the
scope only shares the connection (pysqlite starts no transaction for a SELECT).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import visitors

__all__ = [
    "Prefetch",
    "SqlReadScope",
    "driver_rows",
    "prefetched",
    "read_connection",
    "read_engine",
    "read_rows",
]


@dataclass(frozen=True, slots=True)
class Prefetch:
    """A statement a scope sends ahead, with its parameters for the scope's subject."""

    statement: sa.Select[Any]
    params: Callable[[str], Mapping[str, Any]]


@dataclass(slots=True)
class _Ambient:
    conn: Connection
    rows: dict[tuple[int, tuple[tuple[str, Any], ...]], list[Any]] = field(default_factory=dict)


_AMBIENT: ContextVar[_Ambient | None] = ContextVar("mmsq_read_connection", default=None)


def read_engine(engine: Engine) -> Engine:
    """The engine for per-request single-statement reads (an agent's look-ups): autocommit on
    PostgreSQL, which saves the BEGIN and ROLLBACK round trips of each; on SQLite the engine
    itself (the driver starts no transaction for a SELECT, and switching the isolation level
    would cost a PRAGMA at every checkout and checkin)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for a read on ``engine``: the enclosing scope's when it is open on the
    same pool, else one checked out for this read and returned after it."""
    ambient = _AMBIENT.get()
    if ambient is not None and ambient.conn.engine.pool is engine.pool:
        yield ambient.conn
        return
    with engine.connect() as conn:
        yield conn


def _key(statement: sa.Executable, params: Mapping[str, Any]) -> tuple[int, tuple[Any, ...]]:
    return id(statement), tuple(sorted(params.items()))


def prefetched(
    conn: Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> list[Any] | None:
    """The rows the enclosing scope fetched ahead for exactly this statement and these
    parameters on ``conn`` (handed out once), or None."""
    ambient = _AMBIENT.get()
    if ambient is None or ambient.conn is not conn or not ambient.rows:
        return None
    return ambient.rows.pop(_key(statement, params), None)


def read_rows(conn: Connection, statement: sa.Executable, params: Mapping[str, Any]) -> list[Any]:
    """The rows of ``statement``: prefetched by the scope, or read now."""
    rows = prefetched(conn, statement, params)
    if rows is None:
        rows = list(conn.execute(statement, dict(params)))
    return rows


_DRIVER_SQL: dict[tuple[int, str], str] = {}


def driver_rows(
    conn: Connection, statement: sa.Select[Any], params: Mapping[str, Any]
) -> list[Any]:
    """PostgreSQL: the rows of ``statement`` (a long-lived statement: compiled once) through
    psycopg in binary format, prepared on the server; bytea arrives as bytes instead of hex
    text twice its size (which the server encodes and the client decodes), arrays typed."""
    key = (id(statement), conn.dialect.driver)
    sql = _DRIVER_SQL.get(key)
    if sql is None:
        sql = _DRIVER_SQL[key] = str(statement.compile(dialect=conn.dialect))
    driver: Any = conn.connection.driver_connection
    with driver.cursor(binary=True) as cur:
        return list(cur.execute(sql, dict(params), prepare=True).fetchall())


_ROW_TYPES: dict[tuple[str, ...], type] = {}


def _row_type(names: tuple[str, ...]) -> type:
    """A tuple with attribute access and ``_mapping`` (what the adapters use of a Row)."""
    cls = _ROW_TYPES.get(names)
    if cls is None:
        base = namedtuple("PrefetchedRow", names)  # type: ignore[misc]
        cls = type(
            "PrefetchedRow",
            (base,),
            {
                "__slots__": (),
                "_mapping": property(lambda self: dict(zip(names, self, strict=True))),
            },
        )
        _ROW_TYPES[names] = cls
    return cls


def _renamed(statement: sa.Select[Any], prefix: str) -> sa.Select[Any]:
    """``statement`` with its bind parameters renamed ``prefix + name`` (the statements read
    together share names such as ``msisdn`` and ``limit``, with different values)."""

    def rename(element: Any) -> Any:
        if isinstance(element, sa.BindParameter):
            return sa.bindparam(prefix + str(element.key), type_=element.type)
        return None

    renamed: Any = visitors.replacement_traverse(statement, {}, rename)  # type: ignore[call-overload]
    return cast("sa.Select[Any]", renamed)


@dataclass(frozen=True, slots=True)
class _Combined:
    """The prefetch statements as one: per statement, its column names and the slice of the
    combined row that holds their arrays."""

    statement: sa.Select[Any]
    names: tuple[tuple[str, ...], ...]
    slices: tuple[slice, ...]


def _combine(prefetch: Sequence[Prefetch]) -> _Combined:
    aggregated = []
    names = []
    slices = []
    at = 0
    for i, p in enumerate(prefetch):
        rows = _renamed(p.statement, f"p{i}_").subquery(f"s{i}")
        aggregated.append(
            sa.select(
                *(sa.func.array_agg(c).label(f"a{i}_{j}") for j, c in enumerate(rows.c))
            ).subquery(f"q{i}")
        )
        names.append(tuple(c.key for c in rows.c))
        slices.append(slice(at, at + len(rows.c)))
        at += len(rows.c)
    statement = sa.select(*(c for q in aggregated for c in q.c))  # one row from each
    return _Combined(statement, tuple(names), tuple(slices))


class SqlReadScope:
    """Implements ``ReadScope``: ``with scope(msisdn):`` runs a block of reads on one
    connection, with ``prefetch`` read ahead by one statement on PostgreSQL."""

    def __init__(self, engine: Engine, prefetch: Sequence[Prefetch] = ()) -> None:
        self._engine = read_engine(engine)
        self._prefetch = tuple(prefetch)
        self._combined = _combine(self._prefetch) if self._prefetch else None

    @contextmanager
    def __call__(self, subject: str | None = None) -> Iterator[None]:
        if _AMBIENT.get() is not None:  # nested: the outer scope's connection serves
            yield
            return
        with self._engine.connect() as conn:
            ambient = _Ambient(conn)
            if subject is not None and self._combined and conn.dialect.name == "postgresql":
                self._fetch_ahead(conn, self._combined, subject, ambient)
            token = _AMBIENT.set(ambient)
            try:
                yield
            finally:
                _AMBIENT.reset(token)

    def _fetch_ahead(
        self, conn: Connection, combined: _Combined, subject: str, ambient: _Ambient
    ) -> None:
        values = [dict(p.params(subject)) for p in self._prefetch]
        named = {f"p{i}_{k}": v for i, params in enumerate(values) for k, v in params.items()}
        (row,) = driver_rows(conn, combined.statement, named)  # aggregates: one row
        for p, params, names, part in zip(
            self._prefetch, values, combined.names, combined.slices, strict=True
        ):
            arrays = row[part]
            make = _row_type(names)
            rows = [] if arrays[0] is None else [make(*r) for r in zip(*arrays, strict=True)]
            ambient.rows[_key(p.statement, params)] = rows
