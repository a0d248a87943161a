"""The audit trail's store (SqlApiStore as AuditLog) on SQLite and PostgreSQL: batches as the
group-commit writer hands them over, and what a failed batch leaves behind."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from mmsq.adapters.sql_api import SqlApiStore
from mmsq.adapters.sql_api_schema import api_audit
from mmsq.adapters.sql_store import SqlStore, create_engine_for
from mmsq.audit import AuditEntry, AuditQuery

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlApiStore]:
    schema = SqlStore.from_url(db_url)
    schema.upgrade()
    schema.close()
    engine = create_engine_for(db_url, pool_size=1, max_overflow=0)
    try:
        yield SqlApiStore(engine)
    finally:
        engine.dispose()


def entry(i: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "at": T0 + timedelta(seconds=i),
        "actor": f"agent-{i}",
        "role": "agent",
        "method": "GET",
        "route": "/v1/subscribers/{msisdn}/diagnosis",
        "action": "diagnosis.read",
        "status": 200,
        "request_id": f"req-{i}",
        "subject": "+86138****8000",
        "detail": None,
        "client": "127.0.0.1",
    }
    fields.update(changes)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def test_a_batch_is_stored_whole_in_order_with_its_nulls_and_limits(store: SqlApiStore) -> None:
    batch = [
        entry(0),
        entry(1, actor=None, role=None, subject=None, client=None, status=401),
        entry(2, detail="x" * 600, route="/v1/" + "r" * 300, method="DELETE"),
    ]
    store.append_many(batch)
    store.append_many([])  # nothing to write is no statement
    got = store.query(AuditQuery()).entries
    assert [e.request_id for e in got] == ["req-0", "req-1", "req-2"]
    assert [e.at for e in got] == [e.at for e in batch]
    assert (got[1].actor, got[1].role, got[1].subject, got[1].client) == (None, None, None, None)
    assert got[1].status == 401
    assert got[2].detail == "x" * 500  # cut to the column's limits, as for one entry
    assert got[2].route == ("/v1/" + "r" * 300)[:200]
    ids = [e.id or 0 for e in got]
    assert 0 < ids[0] < ids[1] < ids[2]


def test_a_batch_leaves_its_pooled_connection_as_it_found_it(store: SqlApiStore) -> None:
    """On PostgreSQL a batch commits on its own (autocommit on the driver for one statement):
    the next user of the pooled connection must find ordinary transactions again."""
    store.append_many([entry(0), entry(1)])
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            assert conn.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
        conn.execute(api_audit.insert(), [_row(entry(9))])
        conn.rollback()  # a transaction: the row is gone again
    assert [e.request_id for e in store.query(AuditQuery()).entries] == ["req-0", "req-1"]


def _row(e: AuditEntry) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(e).items() if k != "id"}


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_batch_on_a_dropped_connection_fails_and_the_next_one_is_stored(
    db_url: str, store: SqlApiStore
) -> None:
    store.append_many([entry(0)])
    with store.engine.connect() as conn:  # the pool's only connection: the writer's
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    other = create_engine_for(db_url)
    try:
        with other.connect() as conn:
            conn.execute(sa.select(sa.func.pg_terminate_backend(pid)))
    finally:
        other.dispose()
    with pytest.raises(psycopg.OperationalError):
        store.append_many([entry(1)])
    store.append_many([entry(2)])  # a new connection: the dead one was not handed out again
    assert [e.request_id for e in store.query(AuditQuery()).entries] == ["req-0", "req-2"]
