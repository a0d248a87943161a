"""Resend eligibility, idempotency and dispatch, on in-memory ports."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mmsq.mms_outbox_model import OutboxState
from mmsq.recovery import State, SubscriberRecovery
from mmsq.resend import (
    RESEND_PRIORITY,
    IdempotencyConflictError,
    RecoverySuspension,
    Refusal,
    Resend,
    ResendRefusedError,
    ResendRequest,
    ResendService,
    ResendStatus,
    status_of,
)
from mmsq.subscription_lookup import InMemorySubscriptions, SubscriptionStatus, SubscriptionView
from tests.api_fakes import (
    FakeRecovery,
    FixedClock,
    MemoryOutbox,
    MemoryResendStore,
    StaticEditions,
    agent,
)

MSISDN = "+8613800138000"


def recovery_in(state: State) -> FakeRecovery:
    return FakeRecovery({MSISDN: SubscriberRecovery(MSISDN, state, None, None, None, 0, None, ())})


def service(
    status: SubscriptionStatus | None = SubscriptionStatus.ACTIVE,
    recovery: FakeRecovery | None = None,
    editions: dict[str, str] | None = None,
    outbox: MemoryOutbox | None = None,
) -> tuple[ResendService, MemoryResendStore]:
    subs = InMemorySubscriptions()
    if status is not None:
        subs.put(SubscriptionView(MSISDN, "ah-daily", status))
    store = MemoryResendStore()
    svc = ResendService(
        store=store,
        outbox=outbox or MemoryOutbox(),
        subscriptions=subs,
        editions=StaticEditions(
            editions if editions is not None else {"ah-daily": "ah-daily-20261123-am"}
        ),
        suspension=RecoverySuspension(recovery or FakeRecovery()),
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
    assert store.resend_by_id(resend.id) == replace(resend, status=ResendStatus.QUEUED)


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


@pytest.mark.parametrize("state", [State.SUSPENDED, State.PROBING])
def test_resend_to_subscriber_suspended_by_mmsq_is_allowed_and_resumes_on_delivery(
    state: State,
) -> None:
    svc, _ = service(recovery=recovery_in(state))
    resend, created = svc.create(agent(), "k1", request())
    assert created
    assert resend.resume_on_delivery


@pytest.mark.parametrize("state", [State.FLAGGED, State.RESUMED, State.INVALID])
def test_other_recovery_states_do_not_set_the_resume_flag(state: State) -> None:
    svc, _ = service(recovery=recovery_in(state))
    resend, _ = svc.create(agent(), "k1", request())
    assert not resend.resume_on_delivery


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


def test_resend_is_queued_in_the_outbox_and_shows_its_state() -> None:
    outbox = MemoryOutbox()
    svc, _ = service(outbox=outbox)
    r, _ = svc.create(agent(), "k1", request())
    [item] = outbox.status(r.id)
    assert (item.kind, item.msisdn, item.edition, item.priority) == (
        "resend",
        MSISDN,
        "ah-daily-20261123-am",
        RESEND_PRIORITY,
    )
    outbox.items[("resend", r.id)] = replace(
        item, state=OutboxState.FAILED, reason="refused by the MMSC: 2002", cause="unknown"
    )
    got = svc.get(r.id)
    assert got is not None
    assert (got.status, got.cause, got.cause_class) == (
        ResendStatus.FAILED,
        "refused by the MMSC: 2002",
        "unknown",
    )


def test_a_resend_recorded_without_its_outbox_item_is_queued_when_read() -> None:
    outbox = MemoryOutbox()
    svc, _ = service(outbox=outbox)
    r, _ = svc.create(agent(), "k1", request())
    outbox.items.clear()  # as if the process died between recording and queueing
    assert svc.get(r.id) is not None
    assert len(outbox.status(r.id)) == 1


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (OutboxState.QUEUED, ResendStatus.QUEUED),
        (OutboxState.SUBMITTING, ResendStatus.QUEUED),
        (OutboxState.SUBMITTED, ResendStatus.SUBMITTED),
        (OutboxState.DELIVERED, ResendStatus.DELIVERED),
        (OutboxState.FAILED, ResendStatus.FAILED),
        (OutboxState.EXPIRED, ResendStatus.FAILED),
    ],
)
def test_resend_status_of_each_outbox_state(state: OutboxState, status: ResendStatus) -> None:
    assert status_of(state) is status
