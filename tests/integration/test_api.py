"""The agent API over a real database (SQLite and PostgreSQL): resends, diagnosis, roles,
rate limits, problem bodies and the audit trail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mmsq.adapters.sql_api_schema import api_audit, api_resends
from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.audit import AuditQuery
from mmsq.delivery_feedback import connect_recovery
from mmsq.recovery import RecoveryService
from mmsq.scoring_rules import load_scoring_rules
from tests.api_harness import (
    ACTIVE,
    BLACKLISTED,
    CANCELLED,
    MMSQ_SUSPENDED,
    NO_DELIVERIES,
    OPERATOR_SUSPENDED,
    UNSUBSCRIBED,
    ApiWorld,
    api_world,
    serve,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def world(db_url: str) -> Iterator[ApiWorld]:
    with api_world(db_url) as w:
        yield w


@pytest.fixture
def client(world: ApiWorld) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def post_resend(
    client: TestClient, world: ApiWorld, body: dict[str, Any], key: str = "k1", who: str = "agent"
) -> httpx.Response:
    return client.post(
        "/v1/resends", json=body, headers={**world.auth(who), "Idempotency-Key": key}
    )


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = r.json()
    assert doc["type"] == f"urn:mmsq:problem:{slug}"
    assert doc["status"] == status
    assert doc["title"]
    assert doc["detail"]
    assert doc["instance"] == f"urn:mmsq:request:{r.headers['x-request-id']}"
    return doc


def test_resend_accepted_with_location_and_readable_status(
    client: TestClient, world: ApiWorld
) -> None:
    r = post_resend(client, world, {"msisdn": "138 0013 8000", "reason": "issue missing"})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert r.headers["location"] == f"/v1/resends/{doc['id']}"
    assert doc["msisdn"] == ACTIVE
    assert doc["status"] == "queued"
    assert doc["edition"] == "ah-daily-20261122-am"  # the latest known for the subscriber
    assert doc["priority"] == 100  # the outbox's resend priority, ahead of probes (10)
    assert doc["resume_on_delivery"] is False
    [item] = world.outbox.status(doc["id"])
    assert (item.kind, item.msisdn, item.edition, item.state) == (
        "resend",
        ACTIVE,
        "ah-daily-20261122-am",
        "queued",
    )
    got = client.get(r.headers["location"], headers=world.auth())
    assert got.status_code == 200
    assert got.json()["id"] == doc["id"]
    assert got.json()["created_at"] == doc["created_at"]


def test_resend_to_subscriber_suspended_by_mmsq_is_flagged(
    client: TestClient, world: ApiWorld
) -> None:
    r = post_resend(client, world, {"msisdn": MMSQ_SUSPENDED, "reason": "x"})
    assert r.status_code == 202
    assert r.json()["resume_on_delivery"] is True


def test_resend_without_any_delivery_record_uses_the_given_edition(
    client: TestClient, world: ApiWorld
) -> None:
    r = post_resend(
        client, world, {"msisdn": NO_DELIVERIES, "reason": "x", "edition": "ah-daily-20261123-am"}
    )
    assert r.status_code == 202
    no_edition = post_resend(client, world, {"msisdn": NO_DELIVERIES, "reason": "x"}, key="k2")
    assert_problem(no_edition, 422, "edition-unknown")


@pytest.mark.parametrize(
    ("msisdn", "status", "slug", "says"),
    [
        (UNSUBSCRIBED, 409, "subscription-inactive", "unsubscribed since 2026-10-02"),
        (CANCELLED, 409, "subscription-inactive", "cancelled"),
        (OPERATOR_SUSPENDED, 409, "subscription-suspended", "suspended by the operator"),
        ("+8613900000000", 404, "subscription-unknown", "no subscription"),
    ],
)
def test_resend_refused_with_a_problem_saying_why(
    client: TestClient, world: ApiWorld, msisdn: str, status: int, slug: str, says: str
) -> None:
    doc = assert_problem(
        post_resend(client, world, {"msisdn": msisdn, "reason": "x"}), status, slug
    )
    assert says in doc["detail"]
    with world.sql.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_resends)).scalar() == 0


def test_invalid_input_gives_422_problems_naming_the_field(
    client: TestClient, world: ApiWorld
) -> None:
    doc = assert_problem(
        post_resend(client, world, {"msisdn": "12", "reason": "x"}), 422, "validation"
    )
    assert doc["errors"][0]["field"] == "body.msisdn"
    doc = assert_problem(
        post_resend(client, world, {"msisdn": "99999999999", "reason": "x"}), 422, "invalid-msisdn"
    )
    missing_key = client.post(
        "/v1/resends", json={"msisdn": ACTIVE, "reason": "x"}, headers=world.auth()
    )
    doc = assert_problem(missing_key, 422, "validation")
    assert "idempotency-key" in doc["detail"].lower()
    extra = post_resend(client, world, {"msisdn": ACTIVE, "reason": "x", "priority": 0})
    assert_problem(extra, 422, "validation")


def test_idempotency_same_key_same_body_replays_and_different_body_is_422(
    client: TestClient, world: ApiWorld
) -> None:
    body = {"msisdn": "13800138000", "reason": "issue missing", "complaint_id": "C1"}
    first = post_resend(client, world, body)
    # The same request written another way (E.164) is the same request.
    again = post_resend(client, world, {**body, "msisdn": "+86 138-0013-8000"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = post_resend(client, world, {**body, "reason": "another"})
    doc = assert_problem(other, 422, "idempotency-key-reused")
    assert doc["resend_id"] == first.json()["id"]
    # Another agent with the same key is another resend.
    theirs = post_resend(client, world, body, who="agent2")
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first.json()["id"]


def test_concurrent_duplicates_over_real_sockets_create_one_resend(world: ApiWorld) -> None:
    body = {"msisdn": ACTIVE, "reason": "concurrent"}
    results: list[httpx.Response] = []
    lock = threading.Lock()
    with serve(world.app) as base:
        barrier = threading.Barrier(8)

        def go() -> None:
            with httpx.Client(base_url=base, timeout=30) as c:
                barrier.wait()
                r = c.post(
                    "/v1/resends", json=body, headers={**world.auth(), "Idempotency-Key": "same"}
                )
            with lock:
                results.append(r)

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.status_code for r in results) == [200] * 7 + [202]
    assert len({r.json()["id"] for r in results}) == 1
    with world.sql.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_resends)).scalar() == 1


def test_diagnosis_shows_subscription_deliveries_verdict_device_and_next_step(
    client: TestClient, world: ApiWorld
) -> None:
    post_resend(client, world, {"msisdn": ACTIVE, "reason": "x"})
    r = client.get("/v1/subscribers/%2B86%20138%200013%208000/diagnosis", headers=world.auth())
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["msisdn"] == ACTIVE
    assert d["subscription"] == {
        "status": "active",
        "product": "ah-daily",
        "since": "2026-09-01T00:00:00Z",
        "channel": None,
    }
    assert [s["product"] for s in d["subscriptions"]] == ["ah-daily"]
    assert [x["cause"] for x in d["deliveries"]] == ["not_fetched", "not_fetched", "delivered"]
    assert d["deliveries"][0]["status_code"] == "Expired"
    assert d["assessment"]["verdict"] == "terminal_misconfigured"
    assert d["assessment"]["source"] == "delivery history"  # never left active: not scored
    assert d["assessment"]["reasons"]
    assert d["recovery"] is None
    assert d["suspended_by_mmsq"] is False
    assert d["device"]["tac"] == "86171203"
    assert [x["kind"] for x in d["remedies"]] == ["resend"]
    assert d["next_step"]["case"] == "handset_settings"
    assert d["next_step"]["script"]["zh"]


def test_diagnosis_of_a_non_subscriber_says_not_subscribed(
    client: TestClient, world: ApiWorld
) -> None:
    d = client.get("/v1/subscribers/13900000000/diagnosis", headers=world.auth()).json()
    assert d["subscription"]["status"] == "unknown"
    assert d["deliveries"] == []
    assert d["next_step"]["case"] == "not_subscribed"


def test_roles(client: TestClient, world: ApiWorld) -> None:
    def status(method: str, path: str, who: str | None, **kw: Any) -> int:
        headers = world.auth(who) if who else {}
        return client.request(method, path, headers=headers, **kw).status_code

    diag = f"/v1/subscribers/{ACTIVE}/diagnosis"
    assert status("GET", diag, None) == 401
    assert status("GET", diag, "feed") == 403
    assert status("GET", diag, "agent") == 200
    assert status("GET", "/v1/audit", "agent") == 403
    assert status("GET", "/v1/audit", "supervisor") == 200
    assert status("GET", "/v1/agents", "supervisor") == 403
    assert status("GET", "/v1/agents", "admin") == 200
    bad = client.get(diag, headers={"Authorization": "Bearer mmsq_not-a-real-token"})
    assert_problem(bad, 401, "unauthenticated")
    assert bad.headers["www-authenticate"] == "Bearer"


def test_admin_manages_agents_and_a_revoked_token_stops_working(
    client: TestClient, world: ApiWorld
) -> None:
    made = client.post(
        "/v1/agents", json={"name": "zhao", "role": "agent"}, headers=world.auth("admin")
    )
    assert made.status_code == 201
    token = made.json()["token"]
    diag = f"/v1/subscribers/{ACTIVE}/diagnosis"
    assert client.get(diag, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    dup = client.post(
        "/v1/agents", json={"name": "zhao", "role": "agent"}, headers=world.auth("admin")
    )
    assert_problem(dup, 409, "agent-exists")
    assert client.delete("/v1/agents/zhao", headers=world.auth("admin")).status_code == 200
    assert client.get(diag, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    names = [a["name"] for a in client.get("/v1/agents", headers=world.auth("admin")).json()]
    assert "zhao" not in names


def test_rate_limit_answers_429_with_retry_after(db_url: str) -> None:
    with api_world(db_url, per_minute=60, burst=3) as w, TestClient(w.app) as c:
        diag = f"/v1/subscribers/{ACTIVE}/diagnosis"
        codes = [c.get(diag, headers=w.auth()).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get(diag, headers=w.auth())
        assert_problem(r, 429, "rate-limited")
        assert int(r.headers["retry-after"]) >= 1
        assert c.get(diag, headers=w.auth("agent2")).status_code == 200  # per token
        w.clock.advance(1)
        assert c.get(diag, headers=w.auth()).status_code == 200


def test_body_over_the_limit_is_413(client: TestClient, world: ApiWorld) -> None:
    big = {"msisdn": ACTIVE, "reason": "x" * 5000}
    assert_problem(post_resend(client, world, big), 413, "body-too-large")


def test_unknown_route_is_a_problem(client: TestClient, world: ApiWorld) -> None:
    assert_problem(client.get("/v1/nothing", headers=world.auth()), 404, "not-found")


def test_audit_records_every_call_with_msisdn_policy(client: TestClient, world: ApiWorld) -> None:
    post_resend(client, world, {"msisdn": ACTIVE, "reason": "x"})
    world.clock.advance(60)
    client.get(f"/v1/subscribers/{ACTIVE}/diagnosis", headers=world.auth())
    client.get(f"/v1/subscribers/{ACTIVE}/diagnosis")  # unauthenticated
    post_resend(client, world, {"msisdn": UNSUBSCRIBED, "reason": "x"}, key="k9")
    r = client.get("/v1/audit", headers=world.auth("supervisor"))
    assert r.status_code == 200
    entries = r.json()["entries"]
    got = [(e["actor"], e["action"], e["status"], e["subject"]) for e in entries]
    assert got == [
        ("agent-1", "resend.create", 202, ACTIVE),
        ("agent-1", "diagnosis.read", 200, "+86138****8000"),
        (None, "diagnosis.read", 401, None),
        ("agent-1", "resend.create", 409, UNSUBSCRIBED),
    ]
    assert entries[0]["route"] == "/v1/resends"
    assert entries[1]["route"] == "/v1/subscribers/{msisdn}/diagnosis"
    assert entries[0]["detail"].startswith("resend rs_")
    assert entries[3]["detail"] == "subscription-inactive"
    # Filters and pages.
    by_time = client.get(
        "/v1/audit",
        params={"since": (world.clock.now()).isoformat(), "actor": "agent-1"},
        headers=world.auth("supervisor"),
    ).json()["entries"]
    assert [e["action"] for e in by_time] == ["diagnosis.read", "resend.create"]
    page = client.get("/v1/audit", params={"limit": 2}, headers=world.auth("supervisor")).json()
    assert len(page["entries"]) == 2
    nxt = client.get(
        "/v1/audit",
        params={"limit": 2, "after_id": page["next_after_id"]},
        headers=world.auth("supervisor"),
    ).json()
    assert nxt["entries"][0]["id"] > page["entries"][-1]["id"]
    naive = client.get(
        "/v1/audit", params={"since": "2026-11-23T08:00:00"}, headers=world.auth("supervisor")
    )
    assert_problem(naive, 422, "validation")


def test_audit_trail_refuses_update_and_delete(client: TestClient, world: ApiWorld) -> None:
    client.get(f"/v1/subscribers/{ACTIVE}/diagnosis", headers=world.auth())
    for stmt in (
        api_audit.update().values(status=200),
        api_audit.delete(),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            world.sql.engine.begin() as conn,
        ):
            conn.execute(stmt)
    if world.sql.dialect == "postgresql":
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            world.sql.engine.begin() as conn,
        ):
            conn.execute(sa.text("TRUNCATE api_audit"))
    with world.sql.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_audit)).scalar() == 1


def test_audit_entry_is_written_before_the_answer_leaves(
    client: TestClient, world: ApiWorld
) -> None:
    r = client.get(
        f"/v1/subscribers/{ACTIVE}/diagnosis",
        headers={**world.auth(), "X-Request-ID": "req-12345678"},
    )
    assert r.headers["x-request-id"] == "req-12345678"
    page = world.store.query(AuditQuery())
    assert [e.request_id for e in page.entries] == ["req-12345678"]
    assert world.clock.now() - page.entries[0].at < timedelta(seconds=1)


def test_resend_status_follows_its_outbox_item(client: TestClient, world: ApiWorld) -> None:
    r = post_resend(client, world, {"msisdn": ACTIVE, "reason": "x"})
    location = r.headers["location"]
    world.outbox.dispatch_once()
    sent = client.get(location, headers=world.auth()).json()
    assert sent["status"] == "submitted"
    assert sent["message_id"] == "MID000001"
    assert [m.msisdn for m in world.mmsc.submitted] == [ACTIVE]
    world.outbox.on_delivery_report(("MID000001", ACTIVE, "Retrieved", world.clock.now()))
    done = client.get(location, headers=world.auth()).json()
    assert done["status"] == "delivered"
    assert done["done_at"] is not None
    assert done["cause"] is None


def test_failed_resend_says_why(client: TestClient, world: ApiWorld) -> None:
    r = post_resend(client, world, {"msisdn": ACTIVE, "reason": "x"})
    world.outbox.dispatch_once()
    world.outbox.on_delivery_report(("MID000001", ACTIVE, "Expired", world.clock.now()))
    doc = client.get(r.headers["location"], headers=world.auth()).json()
    assert doc["status"] == "failed"
    assert "Expired" in doc["cause"]
    assert doc["cause_class"] == "not_fetched"


def test_delivered_resend_resumes_a_subscriber_suspended_by_mmsq(
    client: TestClient, world: ApiWorld
) -> None:
    rstore = SqlRecoveryStore(world.sql.engine)
    recovery = RecoveryService(
        rstore, rstore, load_scoring_rules(None).recovery, world.clock, "Asia/Shanghai"
    )
    connect_recovery(world.outbox, recovery)
    diag = f"/v1/subscribers/{MMSQ_SUSPENDED}/diagnosis"
    before = client.get(diag, headers=world.auth()).json()
    assert before["suspended_by_mmsq"] is True
    assert before["recovery"]["state"] == "suspended"
    assert [h["to_state"] for h in before["recovery"]["history"]] == ["suspended", "flagged"]
    assert before["assessment"]["source"] == "scoring"
    assert before["assessment"]["verdict"] == "terminal_misconfigured"
    assert before["assessment"]["reasons"][0] == "terminal_misconfigured (score 0.91)"
    assert before["next_step"]["case"] == "delivery_suspended"
    r = post_resend(client, world, {"msisdn": MMSQ_SUSPENDED, "reason": "x"})
    assert r.json()["resume_on_delivery"] is True
    world.outbox.dispatch_once()
    world.outbox.on_delivery_report(("MID000001", MMSQ_SUSPENDED, "Retrieved", world.clock.now()))
    after = client.get(diag, headers=world.auth()).json()
    assert after["suspended_by_mmsq"] is False
    assert after["recovery"]["state"] == "resumed"
    assert after["recovery"]["history"][0]["event"] == "delivered"
    assert r.json()["id"] in after["recovery"]["history"][0]["evidence"]
    assert [x["outcome"] for x in after["remedies"] if x["kind"] == "resend"] == ["delivered"]


def test_do_not_contact_list_never_blocks_resend_or_diagnosis(
    client: TestClient, world: ApiWorld
) -> None:
    SqlRecoveryStore(world.sql.engine).upsert_blacklist(
        pd.DataFrame({"msisdn": [BLACKLISTED], "reason": ["complained"], "until": [None]}),
        world.clock.now(),
    )
    r = post_resend(client, world, {"msisdn": BLACKLISTED, "reason": "x", "edition": "ah-1"})
    assert r.status_code == 202, r.text
    d = client.get(f"/v1/subscribers/{BLACKLISTED}/diagnosis", headers=world.auth())
    assert d.status_code == 200
    assert d.json()["subscription"]["status"] == "active"


def _event(event_id: str, kind: str, at: str, msisdn: str = "13900139000") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "msisdn": msisdn,
        "product": "ah-daily",
        "kind": kind,
        "event_time": at,
        "source": "boss",
        "channel": "sms",
    }


def test_subscription_events_from_the_feed(client: TestClient, world: ApiWorld) -> None:
    feed = world.auth("feed")
    url = "/v1/subscription-events"
    new = client.post(
        url, json=_event("e1", "subscribe", "2026-11-20T08:00:00+08:00"), headers=feed
    )
    assert new.status_code == 201, new.text
    assert new.json() == {
        "event_id": "e1",
        "outcome": "applied",
        "status": "active",
        "previous_status": None,
        "reason": "",
    }
    again = client.post(
        url, json=_event("e1", "subscribe", "2026-11-20T08:00:00+08:00"), headers=feed
    )
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    stale = client.post(
        url, json=_event("e2", "unsubscribe", "2026-11-19T08:00:00+08:00"), headers=feed
    )
    assert (stale.status_code, stale.json()["outcome"]) == (202, "stale")
    same = client.post(url, json=_event("e3", "resume", "2026-11-21T08:00:00Z"), headers=feed)
    assert (same.status_code, same.json()["outcome"]) == (202, "unchanged")
    bad = client.post(
        url, json=_event("e7", "resume", "2026-11-21T08:00:00Z", "13900139001"), headers=feed
    )
    assert (bad.status_code, bad.json()["outcome"]) == (202, "rejected")
    assert bad.json()["reason"] == "cannot resume from no subscription"
    # The subscription is now active for resends and diagnosis.
    d = client.get("/v1/subscribers/13900139000/diagnosis", headers=world.auth()).json()
    assert d["subscription"]["status"] == "active"
    assert d["subscription"]["channel"] == "sms"
    assert_problem(
        client.post(url, json=_event("e4", "subscribe", "x"), headers=feed), 422, "validation"
    )
    assert_problem(
        client.post(
            url, json=_event("e5", "cancel", "2026-11-21T08:00:00Z", msisdn="999"), headers=feed
        ),
        422,
        "invalid-msisdn",
    )
    refused = client.post(
        url, json=_event("e6", "cancel", "2026-11-21T08:00:00Z"), headers=world.auth()
    )
    assert_problem(refused, 403, "forbidden")
    entries = client.get("/v1/audit", headers=world.auth("supervisor")).json()["entries"]
    events = [e for e in entries if e["action"] == "subscription_event.create"]
    assert [e["status"] for e in events] == [201, 200, 202, 202, 202, 422, 422, 403]
    assert events[0]["subject"] == "+86139****9000"
    assert events[0]["detail"] == "e1: subscribe ah-daily from boss: applied"
