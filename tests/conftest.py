"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy.engine import make_url

from tests.pg_cluster import ExistingPostgres, ThrowawayPostgres, pg_available

# ============================================================================================
# Databases: SQLite and a real PostgreSQL
#
# `db_url` runs a test once per backend (ids `sqlite` and `postgres`). The PostgreSQL server is
# $MMSQ_TEST_PG_URL when set, else a throwaway cluster started once per session (see
# tests/pg_cluster.py). Without PostgreSQL the `postgres` cases are skipped locally but fail in
# CI (CI=true or MMSQ_REQUIRE_PG=1): CI must never silently lose them.
# ============================================================================================


def _pg_required() -> bool:
    return (
        os.environ.get("CI", "").lower() in ("true", "1")
        or os.environ.get("MMSQ_REQUIRE_PG") == "1"
    )


def _pg_unavailable(reason: str) -> NoReturn:
    if _pg_required():
        pytest.fail(
            f"PostgreSQL is required (CI=true or MMSQ_REQUIRE_PG=1) but {reason}",
            pytrace=False,
        )
    pytest.skip(f"PostgreSQL {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ExistingPostgres | ThrowawayPostgres]:
    """A PostgreSQL server with `.url` and `create_database()`; started once per session."""
    if url := os.environ.get("MMSQ_TEST_PG_URL"):
        yield ExistingPostgres(url)
        return
    ok, why = pg_available()
    if not ok:
        _pg_unavailable(f"is unavailable: {why}")
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(ThrowawayPostgres())
        except (RuntimeError, OSError) as exc:
            _pg_unavailable(f"did not start: {exc}")
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mmsq.db'}"
        return
    server: ExistingPostgres | ThrowawayPostgres = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    # Best effort (WITH (FORCE) also ends connections a test leaked); a throwaway cluster is
    # deleted at the end of the session anyway.
    with contextlib.suppress(Exception):
        server.drop_database(str(make_url(url).database))


# ============================================================================================
# (more shared fixtures go below, one section per topic)
# ============================================================================================


@pytest.fixture(autouse=True)
def _unfrozen_heap() -> Iterator[None]:
    """A served app freezes the heap at start-up (``settle_heap``); in the test process the
    objects of earlier tests are given back to the collector after each test."""
    yield
    gc.unfreeze()
