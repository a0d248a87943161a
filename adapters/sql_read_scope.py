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
was given (``Prefetch``: a statement and its parameters for the subject) are sent together in
psycopg's pipeline mode and their rows are kept. An adapter asks ``read_rows`` (or
``prefetched``) for its statement and parameters: it gets the kept rows when they match, at
most once, and otherwise runs the statement itself. A statement the scope did not foresee
therefore costs only its own round trip, and a result is never reused.

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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "Prefetch",
    "SqlReadScope",
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
    if ambient is not None and not ambient.conn.closed and ambient.conn.engine.pool is engine.pool:
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


class SqlReadScope:
    """Implements ``ReadScope``: ``with scope(msisdn):`` runs a block of reads on one
    connection, with ``prefetch`` sent ahead in one round trip on PostgreSQL."""

    def __init__(self, engine: Engine, prefetch: Sequence[Prefetch] = ()) -> None:
        self._engine = read_engine(engine)
        self._prefetch = tuple(prefetch)
        self._sql: list[str] | None = None  # the prefetch statements compiled, on first use

    @contextmanager
    def __call__(self, subject: str | None = None) -> Iterator[None]:
        if _AMBIENT.get() is not None:  # nested: the outer scope's connection serves
            yield
            return
        with self._engine.connect() as conn:
            ambient = _Ambient(conn)
            if subject is not None and self._prefetch and conn.dialect.name == "postgresql":
                self._fetch_ahead(conn, subject, ambient)
            token = _AMBIENT.set(ambient)
            try:
                yield
            finally:
                _AMBIENT.reset(token)

    def _fetch_ahead(self, conn: Connection, subject: str, ambient: _Ambient) -> None:
        if self._sql is None:
            self._sql = [str(p.statement.compile(dialect=conn.dialect)) for p in self._prefetch]
        driver: Any = conn.connection.driver_connection
        params = [dict(p.params(subject)) for p in self._prefetch]
        cursors = []
        try:
            with driver.pipeline():  # everything is sent, then every answer read: one trip
                for sql, values in zip(self._sql, params, strict=True):
                    cur = driver.cursor(binary=True)  # bytea as bytes, not hex text
                    cursors.append(cur)
                    cur.execute(sql, values, prepare=True)
            for p, values, cur in zip(self._prefetch, params, cursors, strict=True):
                row = _row_type(tuple(c.name for c in cur.description))
                ambient.rows[_key(p.statement, values)] = [row(*r) for r in cur.fetchall()]
        finally:
            for cur in cursors:
                cur.close()
