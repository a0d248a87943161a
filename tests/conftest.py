"""Shared fixtures: databases (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg_cluster import ThrowawayPostgres, pg_available


def _pg_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("MMSQ_REQUIRE_PG") == "1"


class _ExternalPostgres:
    def __init__(self, url: str) -> None:
        self.url = url

    def create_database(self, name: str | None = None) -> str:
        import uuid

        import sqlalchemy as sa

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, name: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A PostgreSQL server: $MMSQ_TEST_PG_URL, or a throwaway cluster started here."""
    if os.environ.get("MMSQ_TEST_PG_URL"):
        yield _ExternalPostgres(os.environ["MMSQ_TEST_PG_URL"])
        return
    ok, why = pg_available()
    if not ok:
        if _pg_required():
            pytest.fail(f"PostgreSQL is required here (CI) but unavailable: {why}")
        pytest.skip(f"PostgreSQL tests skipped locally: {why}")
    try:
        cluster = ThrowawayPostgres().__enter__()
    except RuntimeError as exc:
        if _pg_required():
            pytest.fail(f"PostgreSQL is required here (CI) but did not start: {exc}")
        pytest.skip(f"PostgreSQL did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mmsq.db'}"
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    # Best effort: the whole cluster is thrown away at the end of the session anyway.
    with contextlib.suppress(Exception):
        server.drop_database(url.rsplit("/", 1)[1])
