"""Resend eligibility, idempotency and dispatch, on in-memory ports."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from mmsq.resend import (
    RESEND_PRIORITY,
    IdempotencyConflictError,
    NoSuspension,
    Refusal,
    Resend,
    ResendDispatcher,
    ResendRefusedError,
    ResendRequest,
    ResendSendError,
    ResendService,
    ResendStatus,
)
from mmsq.subscription_lookup import (
    SUSPENDED_BY_MMSQ,
    InMemorySubscriptions,
    SubscriptionStatus,
    SubscriptionView,
)
from tests.api_fakes import FixedClock, MemoryResendStore, StaticEditions, agent

MSISDN = "+8613800138000"


class Suspended:
    def __init__(self, *msisdns: str) -> None:
        self.msisdns = set(msisdns)

    def delivery_suspended(self, msisdn: str) -> bool:
        return msisdn in self.msisdns


def service(
    status: SubscriptionStatus | None = SubscriptionStatus.ACTIVE,
    suspended_by: str | None = None,
    suspension: object = None,
    editions: dict[str, str] | None = None,
) -> tuple[ResendService, MemoryResendStore]:
    subs = InMemorySubscriptions()
    if status is not None:
        subs.put(SubscriptionView(MSISDN, "ah-daily", status, suspended_by))
    store = MemoryResendStore()
    svc = ResendService(
        store=store,
        subscriptions=subs,
        editions=StaticEditions(
            editions if editions is not None else {"ah-daily": "ah-daily-20261123-am"}
        ),
        suspension=suspension or NoSuspension(),  # type: ignore[arg-type]
        clock=FixedClock(),
    )
    return svc, store


def request(**kw: str) -> ResendRequest:
    return ResendRequest(msisdn=MSISDN, reason=kw.pop("reason", "issue missing"), **kw)


def test_resend_queued_for_active_subscription_with_latest_edition_and_priority() -> None:
    svc, store = service()
    resend, created = svc.create(agent(), "k1", request())
    assert created
    assert resend.status is ResendStatus.QUEUED
    assert resend.edition == "ah-daily-20261123-am"
    assert resend.priority == RESEND_PRIORITY
    assert not resend.resume_on_delivery
    assert store.resend_by_id(resend.id) == resend


def test_resend_of_an_edition_mmsq_never_sent_is_allowed() -> None:
    svc, _ = service(editions={})
    resend, _ = svc.create(agent(), "k1", request(edition="ah-daily-20260101-pm"))
    assert resend.edition == "ah-daily-20260101-pm"


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (None, Refusal.SUBSCRIPTION_UNKNOWN),
        (SubscriptionStatus.UNSUBSCRIBED, Refusal.SUBSCRIPTION_INACTIVE),
        (SubscriptionStatus.CANCELLED, Refusal.SUBSCRIPTION_INACTIVE),
        (SubscriptionStatus.SUSPENDED, Refusal.SUBSCRIPTION_SUSPENDED),
    ],
)
def test_resend_refused_when_subscription_not_active(
    status: SubscriptionStatus | None, refusal: Refusal
) -> None:
    svc, store = service(status)
    with pytest.raises(ResendRefusedError) as info:
        svc.create(agent(), "k1", request())
    assert info.value.refusal is refusal
    assert "+8613800138000" not in info.value.detail  # masked
    assert store.rows == {}


def test_resend_to_subscriber_suspended_by_mmsq_is_allowed_and_resumes_on_delivery() -> None:
    svc, _ = service(SubscriptionStatus.SUSPENDED, suspended_by=SUSPENDED_BY_MMSQ)
    resend, created = svc.create(agent(), "k1", request())
    assert created
    assert resend.resume_on_delivery


def test_active_subscriber_in_recovery_suspension_gets_resume_flag() -> None:
    svc, _ = service(suspension=Suspended(MSISDN))
    resend, _ = svc.create(agent(), "k1", request())
    assert resend.resume_on_delivery


def test_resend_refused_when_no_edition_known_and_none_given() -> None:
    svc, _ = service(editions={})
    with pytest.raises(ResendRefusedError) as info:
        svc.create(agent(), "k1", request())
    assert info.value.refusal is Refusal.EDITION_UNKNOWN


def test_same_key_same_body_returns_the_same_resend() -> None:
    svc, store = service()
    first, created1 = svc.create(agent(), "k1", request())
    again, created2 = svc.create(agent(), "k1", request())
    assert (created1, created2) == (True, False)
    assert again.id == first.id
    assert len(store.rows) == 1


def test_same_key_different_body_is_a_conflict() -> None:
    svc, _ = service()
    first, _ = svc.create(agent(), "k1", request())
    with pytest.raises(IdempotencyConflictError) as info:
        svc.create(agent(), "k1", request(reason="something else"))
    assert info.value.existing.id == first.id


def test_keys_are_per_agent() -> None:
    svc, store = service()
    a, _ = svc.create(agent(1, "a"), "k1", request())
    b, _ = svc.create(agent(2, "b"), "k1", request())
    assert a.id != b.id
    assert len(store.rows) == 2


def test_concurrent_duplicates_create_one_resend() -> None:
    svc, store = service()
    results: list[Resend] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(svc.create(agent(), "same", request())[0])

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.rows) == 1
    assert {r.id for r in results} == set(store.rows)


class Sender:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[str] = []

    def submit(self, resend: Resend) -> str:
        if self.fail:
            raise ResendSendError("mm7 SubmitRsp 4006 service unavailable")
        self.sent.append(resend.id)
        return f"mid-{len(self.sent)}"


def test_dispatcher_submits_and_records_outcomes() -> None:
    svc, store = service()
    r, _ = svc.create(agent(), "k1", request())
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    sender = Sender()
    dispatcher = ResendDispatcher(store, sender, clock)
    assert dispatcher.run_once() == 1
    submitted = store.resend_by_id(r.id)
    assert submitted is not None
    assert submitted.status is ResendStatus.SUBMITTED
    assert submitted.message_id == "mid-1"
    assert dispatcher.run_once() == 0
    done = dispatcher.record_outcome(r.id, delivered=False, cause="not_fetched")
    assert done is not None
    assert (done.status, done.cause) == (ResendStatus.FAILED, "not_fetched")


def test_dispatcher_records_send_failure_cause() -> None:
    svc, store = service()
    r, _ = svc.create(agent(), "k1", request())
    ResendDispatcher(store, Sender(fail=True), FixedClock()).run_once()
    failed = store.resend_by_id(r.id)
    assert failed is not None
    assert failed.status is ResendStatus.FAILED
    assert failed.cause is not None
    assert "4006" in failed.cause
