"""The migration chain builds exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mmsq.adapters.sql_schema import metadata
from mmsq.adapters.sql_store import SqlStore


def test_migrations_match_declared_schema(db_url: str) -> None:
    store = SqlStore.from_url(db_url)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    # Comments are not compared on SQLite; anything else is drift between code and migrations.
    assert diff == []


def test_upgrade_is_repeatable(db_url: str) -> None:
    store = SqlStore.from_url(db_url)
    try:
        first = store.upgrade()
        second = store.upgrade()
    finally:
        store.close()
    assert first[1] == second[0] == second[1]
