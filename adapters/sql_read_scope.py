"""One pooled connection for the look-ups of one request (a diagnosis).

A diagnosis reads one subscriber through five adapters: subscriptions, recent events, device,
recovery state and transitions, resends. Each used to check a connection out of the pool and
back in: on PostgreSQL that is the pool's bookkeeping, the autocommit switch and its reset,
five times per request (about 0.3 ms of CPU of the 1.1 to 1.4 ms the look-ups cost).

``SqlReadScope`` opens one connection for a block of reads and makes it the *ambient* read
connection of the current context (a ``ContextVar``: each thread and each asyncio task has
its own). Adapters take their read connections through ``read_connection(engine)``, which
returns the ambient one when it belongs to the same pool, and a connection of their own
otherwise (outside a scope, or on another database). Only single-statement reads use it:
writes keep their own transactions.

On PostgreSQL the scope's connection is in autocommit, so each statement reads its own
snapshot, exactly as the separate connections did. On SQLite it is the engine's own
(pysqlite starts no transaction for a SELECT).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.engine import Connection, Engine

__all__ = ["SqlReadScope", "read_connection", "read_engine"]

_AMBIENT: ContextVar[Connection | None] = ContextVar("mmsq_read_connection", default=None)


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
    if ambient is not None and not ambient.closed and ambient.engine.pool is engine.pool:
        yield ambient
        return
    with engine.connect() as conn:
        yield conn


class SqlReadScope:
    """Implements ``ReadScope``: ``with scope():`` runs a block of reads on one connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = read_engine(engine)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if _AMBIENT.get() is not None:  # nested: the outer scope's connection serves
            yield
            return
        with self._engine.connect() as conn:
            token = _AMBIENT.set(conn)
            try:
                yield
            finally:
                _AMBIENT.reset(token)
