"""The MM7 outbox on SQLite and PostgreSQL with a scripted gateway: states, retries, expiry,
priority, crash recovery and delivery-report correlation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.mms import (
    PROBE_EDITION,
    MmsContent,
    MmsSubmission,
    SubmitOutcome,
    SubmitResult,
    probe_content,
)
from mmsq.mms_content import ContentUnavailableError, OutboxContent
from mmsq.mms_dispatcher import MmsDispatcher
from mmsq.mms_outbox import MmsOutbox, OutboxPolicy
from mmsq.mms_outbox_model import OutboxItem, OutboxKind, OutboxState, ReceivedReport
from mmsq.rules_loader import load_rules

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
A, B, C = "+8613800138001", "+8613800138002", "+8613800138003"

ACCEPT = SubmitResult(SubmitOutcome.ACCEPTED, 1000, "Success", "MMSC-1")
BUSY = SubmitResult(SubmitOutcome.RETRY, 4006, "Service unavailable")
LOST = SubmitResult(
    SubmitOutcome.RETRY, None, "transport: ReadTimeout('timed out')", details={"sent": "maybe"}
)


@dataclass
class FakeClock:
    now_value: datetime = T0

    def now(self) -> datetime:
        return self.now_value

    def advance(self, seconds: float) -> None:
        self.now_value += timedelta(seconds=seconds)


@dataclass
class ScriptedGateway:
    """Answers from a script (the last answer repeats); message ids count up when accepted."""

    answers: list[SubmitResult] = field(default_factory=lambda: [ACCEPT])
    sent: list[MmsSubmission] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, submission: MmsSubmission) -> SubmitResult:
        with self.lock:
            self.sent.append(submission)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if answer.outcome is SubmitOutcome.ACCEPTED:
                answer = SubmitResult(answer.outcome, 1000, "Success", f"MMSC{len(self.sent):06X}")
            return answer


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_rules(None).status_codes)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlMmsOutboxStore]:
    sql = SqlStore.from_url(db_url)
    sql.upgrade()
    try:
        yield SqlMmsOutboxStore(sql.engine)
    finally:
        sql.close()


@dataclass
class Rig:
    outbox: MmsOutbox
    gateway: ScriptedGateway
    clock: FakeClock
    store: SqlMmsOutboxStore

    def item(self, reference: str, kind: OutboxKind = OutboxKind.PROBE) -> OutboxItem:
        (found,) = self.store.find(reference, kind)
        return found


@pytest.fixture
def rig(store: SqlMmsOutboxStore, classifier: Classifier) -> Rig:
    clock = FakeClock()
    gateway = ScriptedGateway()
    policy = OutboxPolicy(max_attempts=3, backoff_s=10, backoff_cap_s=60, lease_s=30, concurrency=1)
    content = OutboxContent("测试", "test", editions=_Editions())
    outbox = MmsOutbox(store, gateway, content, classifier, clock, policy)
    return Rig(outbox, gateway, clock, store)


def test_enqueue_is_idempotent_by_kind_and_reference(rig: Rig) -> None:
    first = rig.outbox.enqueue("probe", A, "ignored", "p-1")
    again = rig.outbox.enqueue(OutboxKind.PROBE, B, "ignored", "p-1")
    resend = rig.outbox.enqueue("resend", A, "ah-daily-20261122-am", "p-1")
    assert first.created
    assert not again.created
    assert resend.created
    assert again.item.id == first.item.id
    assert again.item.msisdn == A  # the stored item, unchanged
    assert first.item.edition == PROBE_EDITION  # a probe is never a newspaper delivery
    assert first.item.state is OutboxState.QUEUED
    assert len(rig.outbox.status("p-1")) == 2


def test_resends_go_before_probes(rig: Rig) -> None:
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.enqueue("probe", B, "", "p-2")
    rig.clock.advance(1)
    rig.outbox.enqueue("resend", C, "ah-daily-20261122-am", "r-1")
    rig.outbox.enqueue("probe", B, "", "p-0", priority=200)  # explicitly above resends
    summary = rig.outbox.dispatch_once()
    assert summary.submitted == 4
    assert [(s.msisdn, s.edition) for s in rig.gateway.sent] == [
        (B, PROBE_EDITION),
        (C, "ah-daily-20261122-am"),
        (A, PROBE_EDITION),
        (B, PROBE_EDITION),
    ]


def test_resend_without_content_fails_with_the_reason(rig: Rig) -> None:
    rig.outbox.enqueue("resend", A, "missing-20261122-am", "r-1")
    rig.outbox.dispatch_once()
    resend = rig.item("r-1", OutboxKind.RESEND)
    assert resend.state is OutboxState.FAILED
    assert resend.reason == "content unavailable: no edition missing-20261122-am"
    assert rig.gateway.sent == []


def test_transient_refusal_is_retried_after_backoff_then_accepted(rig: Rig) -> None:
    rig.gateway.answers = [BUSY, BUSY, ACCEPT]
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert (item.state, item.attempts, item.status_code) == (OutboxState.QUEUED, 1, 4006)
    assert item.next_attempt_at == T0 + timedelta(seconds=10)
    assert rig.outbox.dispatch_once().claimed == 0  # not due yet
    rig.clock.advance(10)
    rig.outbox.dispatch_once()
    assert rig.item("p-1").next_attempt_at == T0 + timedelta(seconds=30)  # doubled
    rig.clock.advance(20)
    rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert (item.state, item.attempts) == (OutboxState.SUBMITTED, 3)
    assert item.message_id == "MMSC000003"


def test_gives_up_after_max_attempts(rig: Rig) -> None:
    rig.gateway.answers = [BUSY]
    rig.outbox.enqueue("probe", A, "", "p-1")
    for _ in range(5):
        rig.outbox.dispatch_once()
        rig.clock.advance(60)
    item = rig.item("p-1")
    assert item.state is OutboxState.FAILED
    assert item.reason == "gave up after 3 attempts: Service unavailable"
    assert len(rig.gateway.sent) == 3


def test_client_error_fails_at_once_with_the_status_text(rig: Rig) -> None:
    rig.gateway.answers = [SubmitResult(SubmitOutcome.REJECTED, 2002, "Address Error")]
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert item.state is OutboxState.FAILED
    assert item.reason == "refused by the MMSC: 2002 Address Error"
    assert item.cause == "subscriber_invalid"
    assert len(rig.gateway.sent) == 1


def test_item_not_sent_before_expiry_is_expired_with_a_reason(rig: Rig) -> None:
    rig.gateway.answers = [BUSY]
    rig.outbox.enqueue("probe", A, "", "p-1", expires_at=T0 + timedelta(seconds=15))
    rig.outbox.enqueue("probe", B, "", "p-2", expires_at=T0 - timedelta(seconds=1))
    rig.outbox.dispatch_once()
    assert rig.item("p-2").state is OutboxState.EXPIRED  # never sent at all
    rig.clock.advance(20)
    summary = rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert summary.expired == 1
    assert item.state is OutboxState.EXPIRED
    assert item.reason is not None
    assert "after 1 attempt(s); last: retry: Service unavailable" in item.reason
    assert [s.msisdn for s in rig.gateway.sent] == [A]


def test_claim_of_a_dead_sender_is_resent_once_then_given_up(rig: Rig) -> None:
    rig.outbox.enqueue("probe", A, "", "p-1")
    # A sender claims the item and dies before storing the SubmitRsp.
    claimed = rig.store.claim_next(T0, "dead", T0 + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.state is OutboxState.SUBMITTING
    assert rig.outbox.dispatch_once().claimed == 0  # its lease still runs
    rig.clock.advance(31)
    rig.gateway.answers = [LOST]  # the resend's answer is lost too
    summary = rig.outbox.dispatch_once()
    assert summary.requeued_in_doubt == 1
    item = rig.item("p-1")
    assert item.state is OutboxState.FAILED
    assert item.in_doubt == 2
    assert item.reason is not None
    assert item.reason.startswith("outcome unknown")
    assert len(rig.gateway.sent) == 1  # the MMSC holds at most two copies


def test_lost_answer_is_resent_once_after_backoff(rig: Rig) -> None:
    rig.gateway.answers = [LOST, ACCEPT]
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert (item.state, item.in_doubt) == (OutboxState.QUEUED, 1)
    rig.clock.advance(10)
    rig.outbox.dispatch_once()
    assert rig.item("p-1").state is OutboxState.SUBMITTED
    assert len(rig.gateway.sent) == 2


def test_item_with_a_message_id_is_never_submitted_again(rig: Rig) -> None:
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    for _ in range(3):
        rig.clock.advance(3600)
        rig.outbox.dispatch_once()
    assert len(rig.gateway.sent) == 1
    assert rig.item("p-1").state is OutboxState.SUBMITTED


def test_delivery_report_correlates_by_message_id_and_notifies(rig: Rig) -> None:
    delivered: list[OutboxItem] = []
    rig.outbox.on_delivered(OutboxKind.PROBE, delivered.append)
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    message_id = rig.item("p-1").message_id
    assert message_id == "MMSC000001"
    corr = rig.outbox.on_delivery_report(
        (f"  {message_id.lower()} ", "13800138001", "Retrieved", T0)
    )
    assert corr is not None
    assert corr.changed
    assert (corr.kind, corr.reference, corr.msisdn, corr.edition) == (
        OutboxKind.PROBE,
        "p-1",
        A,
        PROBE_EDITION,
    )
    assert corr.item.state is OutboxState.DELIVERED
    assert corr.cause == "delivered"
    report = corr.delivery_report()
    assert (report.edition, report.msisdn, report.status_code) == (PROBE_EDITION, A, "Retrieved")
    assert [d.reference for d in delivered] == ["p-1"]
    repeat = rig.outbox.on_delivery_report((message_id, A, "Retrieved", T0))
    assert repeat is not None
    assert not repeat.changed
    assert len(delivered) == 1


def test_failed_and_pending_reports(rig: Rig) -> None:
    rig.outbox.enqueue("resend", A, "ah-daily-20261122-am", "r-1")
    rig.outbox.enqueue("probe", B, "", "p-1")
    rig.outbox.dispatch_once()
    r1, p1 = rig.item("r-1", OutboxKind.RESEND), rig.item("p-1")
    forwarded = rig.outbox.on_delivery_report(ReceivedReport(r1.message_id or "", A, "Forwarded"))
    assert forwarded is not None
    assert not forwarded.final
    assert forwarded.item.state is OutboxState.SUBMITTED
    expired = rig.outbox.on_delivery_report(
        ReceivedReport(p1.message_id or "", B, "Expired", T0, "not retrieved")
    )
    assert expired is not None
    assert expired.item.state is OutboxState.FAILED
    assert expired.item.cause == "not_fetched"
    assert expired.item.reason == "delivery report: MMStatus Expired (not retrieved)"


def test_unmatched_report_is_kept_and_matched_when_its_submit_rsp_is_stored(rig: Rig) -> None:
    assert rig.outbox.on_delivery_report(("nobody-knows", A, "Retrieved", T0)) is None
    # A report that overtakes its SubmitRsp: MessageID MMSC000001 is about to be issued.
    assert rig.outbox.on_delivery_report(("mmsc000001", A, "Retrieved", T0)) is None
    assert rig.store.unmatched_count() == 2
    delivered: list[OutboxItem] = []
    rig.outbox.on_delivered(OutboxKind.PROBE, delivered.append)
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    assert rig.item("p-1").state is OutboxState.DELIVERED
    assert [d.reference for d in delivered] == ["p-1"]
    assert rig.store.unmatched_count() == 1
    (left,) = rig.outbox.unmatched()
    assert left.report.message_id == "nobody-knows"


def test_concurrent_senders_never_share_an_item(
    store: SqlMmsOutboxStore, classifier: Classifier
) -> None:
    clock = FakeClock()
    gateway = ScriptedGateway()
    outbox = MmsOutbox(
        store,
        gateway,
        OutboxContent("t", "s"),
        classifier,
        clock,
        OutboxPolicy(concurrency=4),
    )
    numbers = [f"+86138001{i:05d}" for i in range(30)]
    for i, n in enumerate(numbers):
        outbox.enqueue("probe", n, "", f"p-{i}")
    summary = outbox.dispatch_once(limit=100)
    assert summary.submitted == 30
    assert sorted(s.msisdn for s in gateway.sent) == sorted(numbers)


class _Editions:
    """Every edition exists but those named missing-*."""

    def edition(self, edition: str, content_ref: str | None) -> MmsContent:
        if edition.startswith("missing"):
            raise ContentUnavailableError(f"no edition {edition}")
        return probe_content(f"edition {edition}")


def test_dispatcher_thread_sends_what_is_enqueued_and_stops(rig: Rig) -> None:
    dispatcher = MmsDispatcher(rig.outbox, rig.clock, idle_wait_s=0.05)
    dispatcher.start()
    try:
        rig.outbox.enqueue("probe", A, "", "p-1")
        for _ in range(500):
            if rig.item("p-1").state is OutboxState.SUBMITTED:
                break
            time.sleep(0.02)
    finally:
        stopped = dispatcher.stop(30)
    assert stopped
    assert not dispatcher.running
    assert rig.item("p-1").state is OutboxState.SUBMITTED


def test_accepted_without_message_id_is_in_doubt_and_resent_once(rig: Rig) -> None:
    blind = SubmitResult(SubmitOutcome.RETRY, 1000, "SubmitRsp without MessageID")
    rig.gateway.answers = [blind, blind]
    rig.outbox.enqueue("probe", A, "", "p-1")
    rig.outbox.dispatch_once()
    assert rig.item("p-1").in_doubt == 1
    rig.clock.advance(60)
    rig.outbox.dispatch_once()
    item = rig.item("p-1")
    assert item.state is OutboxState.FAILED
    assert item.reason is not None
    assert item.reason.startswith("outcome unknown")
    assert len(rig.gateway.sent) == 2


def test_enqueue_refuses_numbers_not_in_e164(rig: Rig) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        rig.outbox.enqueue("probe", "13800138000", "", "p-1")
    with pytest.raises(ValueError, match="reference"):
        rig.outbox.enqueue("probe", A, "", " ")
