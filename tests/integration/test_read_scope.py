"""The look-ups of one diagnosis share one pooled connection (SQLite and PostgreSQL), and
read exactly what they read on connections of their own."""

from __future__ import annotations

import copy
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
    unscoped._reads = nullcontext  # type: ignore[assignment]  # each look-up on its own
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
