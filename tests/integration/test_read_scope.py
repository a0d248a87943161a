"""The look-ups of one diagnosis share one pooled connection (SQLite and PostgreSQL), and
read exactly what they read on connections of their own."""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mmsq.adapters.sql_read_scope import SqlReadScope, read_connection
from mmsq.adapters.sql_store import create_engine_for
from mmsq.diagnosis import DiagnosisService
from tests.api_harness import ACTIVE, MMSQ_SUSPENDED, NO_DELIVERIES, ApiWorld, api_world


@pytest.fixture
def world(db_url: str) -> Iterator[ApiWorld]:
    with api_world(db_url) as w:
        yield w


def _checkouts(engine: sa.Engine) -> list[int]:
    """Thread ids of the pool checkouts on ``engine`` from now on."""
    seen: list[int] = []
    sa.event.listen(engine.pool, "checkout", lambda *_a: seen.append(threading.get_ident()))
    return seen


def test_a_diagnosis_checks_out_one_connection_and_reads_the_same(world: ApiWorld) -> None:
    diagnosis = world.services.diagnosis
    unscoped: DiagnosisService = copy.copy(diagnosis)
    unscoped._reads = lambda _m: nullcontext()  # type: ignore[assignment]  # each on its own
    with TestClient(world.app) as client:  # a resend, so that the resends read finds one
        r = client.post(
            "/v1/resends",
            json={"msisdn": ACTIVE, "reason": "complaint"},
            headers={**world.auth(), "Idempotency-Key": "k1"},
        )
        assert r.status_code == 202, r.text
    seen = _checkouts(world.sql.engine)
    for msisdn in (ACTIVE, MMSQ_SUSPENDED, NO_DELIVERIES):
        del seen[:]
        scoped = diagnosis.diagnose(msisdn)
        assert seen == [threading.get_ident()], msisdn
        del seen[:]
        alone = unscoped.diagnose(msisdn)
        assert len(seen) >= 5, msisdn  # subscriptions, events, device, recovery, resends
        assert scoped == alone
    assert diagnosis.diagnose(ACTIVE).resends
    suspended = diagnosis.diagnose(MMSQ_SUSPENDED)
    assert suspended.deliveries
    assert suspended.device is not None
    assert suspended.recovery is not None
    assert suspended.recovery.transitions
    assert suspended.deliveries


def test_read_connection_uses_the_scope_of_its_own_pool_and_thread(db_url: str) -> None:
    engine = create_engine_for(db_url)
    other = create_engine_for(db_url)
    try:
        scope = SqlReadScope(engine)
        with read_connection(engine) as alone:
            pass
        assert alone.closed  # outside a scope: checked out for the read, returned after
        with scope():
            with read_connection(engine) as a, read_connection(engine) as b:
                assert a is b
                assert not a.closed
                assert a.execute(sa.text("SELECT 1")).scalar() == 1
            with scope(), read_connection(engine) as c:  # nested: the outer one serves
                assert c is a
            with read_connection(other) as d:  # another pool: a connection of its own
                assert d is not a
            found: list[sa.Connection] = []

            def elsewhere() -> None:
                with read_connection(engine) as e:
                    found.append(e)

            t = threading.Thread(target=elsewhere)
            t.start()
            t.join()
            assert found
            assert found[0] is not a
        assert a.closed  # returned to the pool when the scope ends
        with read_connection(engine) as after:
            assert after is not a
    finally:
        engine.dispose()
        other.dispose()


def _statements(engine: sa.Engine) -> list[str]:
    """Statements run through SQLAlchemy on ``engine`` from now on."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, stmt, *_a: seen.append(stmt))
    return seen


def test_on_postgresql_a_diagnosis_reads_everything_in_the_prefetch(world: ApiWorld) -> None:
    """PostgreSQL: the six look-ups arrive in one round trip, ahead (none runs on its own;
    what the recent-events index lacks is still read from the segments); SQLite: each runs
    its statement on the shared connection."""
    statements = _statements(world.sql.engine)
    d = world.services.diagnosis.diagnose(MMSQ_SUSPENDED)
    assert d.deliveries
    assert d.recovery is not None
    tables = (
        "FROM subscriptions",
        "FROM recent_event_slices",
        "FROM device_blocks",
        "FROM recovery_states",
        "FROM recovery_transitions",
        "FROM api_resends",
    )
    looked_up = {t for t in tables for s in statements if t in s}
    if world.sql.engine.dialect.name == "postgresql":
        assert looked_up == set()
    else:
        assert looked_up == set(tables)


def test_prefetched_rows_are_handed_out_once_and_only_for_their_parameters(
    world: ApiWorld,
) -> None:
    from mmsq.adapters.sql_read_scope import Prefetch, prefetched, read_rows
    from mmsq.adapters.sql_subscriptions import _SUBSCRIPTIONS_OF

    engine = world.sql.engine
    scope = SqlReadScope(engine, [Prefetch(_SUBSCRIPTIONS_OF, lambda m: {"msisdn": m})])
    postgres = engine.dialect.name == "postgresql"
    statements = _statements(engine)
    with scope(ACTIVE), read_connection(engine) as conn:
        ahead = prefetched(conn, _SUBSCRIPTIONS_OF, {"msisdn": ACTIVE})
        assert (ahead is not None) == postgres
        if ahead is not None:
            assert [r.product for r in ahead] == ["ah-daily"]
            assert ahead[0]._mapping["msisdn"] == ACTIVE
            assert prefetched(conn, _SUBSCRIPTIONS_OF, {"msisdn": ACTIVE}) is None  # once
        assert statements == []
        again = read_rows(conn, _SUBSCRIPTIONS_OF, {"msisdn": ACTIVE})  # read now
        other = read_rows(conn, _SUBSCRIPTIONS_OF, {"msisdn": MMSQ_SUSPENDED})
        assert len(statements) == 2
    assert [r.product for r in again] == ["ah-daily"]
    assert [r.msisdn for r in other] == [MMSQ_SUSPENDED]
    if ahead is not None:  # the driver's rows read as SQLAlchemy's do
        assert [tuple(r) for r in ahead] == [tuple(r) for r in again]


def test_the_served_api_takes_start_up_objects_out_of_full_collections(world: ApiWorld) -> None:
    """Full collections walked every object start-up made (140 to 180 ms a pause under load)."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(world.app) as client:
        assert gc.get_freeze_count() > 10_000
        assert client.get("/v1/subscribers/13800138000/diagnosis", headers=world.auth()).is_success
