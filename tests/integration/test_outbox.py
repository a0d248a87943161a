"""The outbox on SQLite and PostgreSQL: idempotent planning, recorded decisions, the segment
and contact states, requeue after a crash, expiry with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mmsq.adapters.sql_outbox import SqlOutbox
from mmsq.contact_policy import load_contact_policy
from mmsq.outbox import PlannedContact, PlannedSegment, Receipt, SubmitResult
from tests.outreach_fixtures import FixedClock, candidates, new_outbox, open_policy, planner

NOON_SHANGHAI = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlOutbox]:
    s = new_outbox(db_url)
    yield s
    s.close()


def classify_status(status: int) -> str | None:
    return None if status == 0x08 else "subscriber_invalid"


def classify_receipt(stat: str, err: str | None) -> str:
    return "unreachable"


def test_planning_twice_plans_once_and_records_why(store: SqlOutbox) -> None:
    clock = FixedClock(NOON_SHANGHAI)
    p = planner(store, clock=clock)
    people = ["+8613800000001", "+8613800000002"]
    first = p.plan(candidates(people), blacklist={"+8613800000002"})
    second = p.plan(candidates(people), blacklist={"+8613800000002"})
    assert (first.planned, first.skipped) == (1, {"blacklist": 1})
    assert (second.planned, second.skipped) == (0, {"same_reason": 1, "blacklist": 1})
    assert len(store.contacts()) == 1
    assert store.status().decisions == {"blacklist": 1, "same_reason": 1}
    why = store.decisions_for("+8613800000002")
    assert [(d["reason"], d["decision"]) for d in why] == [("terminal_capacity", "blacklist")]


def test_the_idempotency_key_stops_a_concurrent_double_plan(store: SqlOutbox) -> None:
    # Two planners racing cannot see each other's history: the unique key still holds.
    contact = PlannedContact(
        idempotency_key="+8613800000001:help_sms:clear_inbox:terminal_capacity:2026-11-23",
        msisdn="+8613800000001",
        action="help_sms",
        reason="terminal_capacity",
        template="clear_inbox",
        step=0,
        text="clear your inbox",
        region=None,
        not_before=NOON_SHANGHAI,
        expires_at=NOON_SHANGHAI + timedelta(hours=24),
        segments=(PlannedSegment(b"clear your inbox", 0, 0),),
    )
    assert store.add_planned([contact], [], NOON_SHANGHAI) == (1, 0)
    assert store.add_planned([contact], [], NOON_SHANGHAI) == (0, 1)
    assert len(store.segments()) == 1


def test_segments_move_through_their_states(store: SqlOutbox) -> None:
    planner(store).plan(candidates(["+8613800000001", "+8613800000002", "+8613800000003"]))
    now = datetime.now(UTC)
    batch = store.claim(10, now, {})
    assert [r.destination for r in batch] == ["8613800000001", "8613800000002", "8613800000003"]
    assert store.status().contacts == {"submitting": 3}
    assert store.claim(10, now, {}) == []  # nothing is claimed twice
    k1, k2, k3 = (r.key for r in batch)
    store.record_results(
        [
            SubmitResult(k1, 0, "00A1", now),
            SubmitResult(k2, 0x0B, None, now),
            SubmitResult(k3, 0x08, None, now),
        ],
        classify_status,
        classify_receipt,
        now,
    )
    states = {c["msisdn"]: c for c in store.contacts()}
    assert states["+8613800000001"]["state"] == "accepted"
    assert states["+8613800000002"]["state"] == "failed"
    assert states["+8613800000002"]["cause"] == "subscriber_invalid"
    assert states["+8613800000002"]["status_code"] == "0x0B"
    assert states["+8613800000003"]["state"] == "submitting"  # back to planned: a retry
    assert [s["state"] for s in store.segments()] == ["accepted", "failed", "planned"]
    matches = store.record_receipts(
        [Receipt("a1", "DELIVRD", "000", now), Receipt("0a1", "DELIVRD", "000", now)],
        classify_receipt,
    )
    assert [(m.matched, m.duplicate) for m in matches] == [(True, False), (True, True)]
    assert {c["msisdn"]: c["state"] for c in store.contacts()}["+8613800000001"] == "delivered"


def test_a_receipt_before_its_answer_waits_then_matches(store: SqlOutbox) -> None:
    planner(store).plan(candidates(["+8613800000001"]))
    now = datetime.now(UTC)
    (req,) = store.claim(10, now, {})
    (early,) = store.record_receipts([Receipt("77", "UNDELIV", "001", now)], classify_receipt)
    assert not early.matched
    assert store.status().waiting_receipts == 1
    matched = store.record_results(
        [SubmitResult(req.key, 0, "77", now)], classify_status, classify_receipt, now
    )
    assert [m.stat for m in matched] == ["UNDELIV"]
    (contact,) = store.contacts()
    assert (contact["state"], contact["cause"], contact["status_code"]) == (
        "failed",
        "unreachable",
        "UNDELIV",
    )
    assert store.status().waiting_receipts == 0


def test_unmatched_receipts_settle_after_the_grace_period(store: SqlOutbox) -> None:
    now = datetime.now(UTC)
    store.record_receipts(
        [Receipt("999", "DELIVRD", "000", now, "8613800000009", "id:999")], classify_receipt
    )
    assert store.settle_waiting_receipts(now - timedelta(seconds=60)) == 0
    assert store.settle_waiting_receipts(now + timedelta(seconds=1)) == 1
    (kept,) = store.unmatched_receipts()
    assert (kept["message_id_raw"], kept["state"], kept["source_addr"]) == (
        "999",
        "unmatched",
        "8613800000009",
    )


def test_requeue_puts_back_only_segments_without_a_stored_answer(store: SqlOutbox) -> None:
    planner(store).plan(candidates([f"+861380000000{i}" for i in range(4)]))
    now = datetime.now(UTC)
    batch = store.claim(4, now, {})
    store.record_results(
        [SubmitResult(batch[0].key, 0, "1", now)], classify_status, classify_receipt, now
    )
    assert store.requeue_in_flight(now) == 3
    assert sorted(s["state"] for s in store.segments()) == ["accepted"] + ["planned"] * 3
    again = store.claim(10, now, {})
    assert [r.key for r in again] == [r.key for r in batch[1:]]
    assert {s["attempts"] for s in store.segments()} == {1, 2}


def test_quiet_hours_defer_and_expire_with_the_reason(store: SqlOutbox) -> None:
    policy = load_contact_policy()
    policy = policy.model_copy(update={"holdout": policy.holdout.model_copy(update={"share": 0})})
    evening = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai: quiet hours
    planner(store, policy=policy, clock=FixedClock(evening), expiry_hours=4).plan(
        candidates(["+8613800000001", "+8613800000002"], region=["Urumqi", None])
    )
    # Nothing may go out before 08:30 local; the expiry (4 h) comes first.
    assert store.claim(10, evening, {}) == []
    assert store.pending(evening)[0] == 0
    assert store.expire(evening) == 2
    (c1, c2) = store.contacts()
    assert c1["state"] == c2["state"] == "expired"
    assert c1["cause"] == "quiet_hours"
    assert "after the expiry" in c1["detail"]
    assert {s["state"] for s in store.segments()} == {"expired"}


def test_contacts_not_sent_in_time_expire_with_the_link_state(store: SqlOutbox) -> None:
    noon = NOON_SHANGHAI
    planner(store, clock=FixedClock(noon), expiry_hours=1).plan(candidates(["+8613800000001"]))
    assert store.expire(noon) == 0
    later = noon + timedelta(hours=2)
    assert store.claim(10, later, {}) == []  # expired contacts are never claimed
    assert store.expire(later, "SMSC link disconnected until the expiry") == 1
    (c,) = store.contacts()
    assert (c["state"], c["cause"], c["detail"]) == (
        "expired",
        "not_sent_in_time",
        "SMSC link disconnected until the expiry",
    )


def test_blocked_regions_wait_for_their_next_send_time(store: SqlOutbox) -> None:
    planner(store, policy=open_policy()).plan(
        candidates(["+8613800000001", "+8613800000002"], region=["Urumqi", "Hefei"])
    )
    now = datetime.now(UTC)
    assert sorted(store.due_regions(now)) == ["Hefei", "Urumqi"]
    later = now + timedelta(hours=3)
    (req,) = store.claim(10, now, {"Urumqi": later})
    assert req.destination == "8613800000002"
    assert store.pending(now) == (
        0,
        datetime.fromtimestamp(int(later.timestamp() * 1000) / 1000, UTC),
    )
