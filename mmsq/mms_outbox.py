"""The crash-safe MM7 sending path for probes and resends: enqueue, dispatch, correlate.

Every step is persisted before the next one starts: an item is stored ``queued`` by
``enqueue``; a sender claims it (``submitting``, with a lease) before its SubmitReq goes out;
the SubmitRsp is stored right after (``submitted`` with the MessageID, or queued again with a
backoff, or ``failed``). A delivery report is correlated by MessageID and ends the item
``delivered`` or ``failed``. A claim whose lease ran out (its sender died) is in doubt: the
MMSC may have accepted the MM, so it is sent again at most ``max_in_doubt_resends`` times,
and an item with a stored MessageID is never submitted again. See docs/mm7.md.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from mmsq.classify import Classifier
from mmsq.domain import CauseClass, DeliveryReport
from mmsq.mms import (
    PROBE_EDITION,
    SENT_MAYBE,
    MmsGateway,
    MmsSubmission,
    SubmitOutcome,
    SubmitResult,
)
from mmsq.mms_content import ContentSource, ContentUnavailableError
from mmsq.mms_outbox_model import (
    DEFAULT_PRIORITY,
    MmsOutboxStore,
    NewOutboxItem,
    OutboxItem,
    OutboxKind,
    OutboxState,
    ReceivedReport,
    ReportLike,
    UnmatchedReport,
    message_key,
)
from mmsq.msisdn import mask_msisdn
from mmsq.ports import Clock

__all__ = [
    "Correlation",
    "DispatchSummary",
    "EnqueueResult",
    "MmsOutbox",
    "OutboxListener",
    "OutboxPolicy",
]

log = structlog.get_logger(__name__)

_E164 = re.compile(r"\+[1-9]\d{6,14}")

OutboxListener = Callable[[OutboxItem], None]


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """Retry, lease and expiry rules (seconds unless named otherwise).

    ``lease_s`` must exceed the longest a SubmitReq can take (connect + read timeouts): a claim
    older than that belongs to a sender that died. ``max_in_doubt_resends``: how many times an
    item whose SubmitReq may have reached the MMSC is sent again (so the MMSC holds at most
    1 + this many copies).
    """

    max_attempts: int = 5
    backoff_s: float = 30.0
    backoff_cap_s: float = 900.0
    lease_s: float = 60.0
    max_in_doubt_resends: int = 1
    expiry: timedelta = timedelta(hours=24)
    concurrency: int = 4

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th attempt failed transiently: doubling, capped."""
        seconds = self.backoff_s * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.backoff_cap_s))


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    item: OutboxItem
    created: bool  # False: (kind, reference) was queued before; nothing changed


@dataclass(frozen=True, slots=True)
class Correlation:
    """A delivery report matched to its item; what callers need to act on it.

    ``changed`` is False for a repeated report or one after the item was already final.
    ``late`` is True when the report came before the SubmitRsp was stored and was matched then.
    """

    item: OutboxItem
    report: ReceivedReport
    cause: str
    final: bool
    changed: bool
    late: bool = False

    @property
    def kind(self) -> OutboxKind:
        return self.item.kind

    @property
    def reference(self) -> str:
        return self.item.reference

    @property
    def msisdn(self) -> str:
        return self.item.msisdn

    @property
    def edition(self) -> str:
        return self.item.edition

    @property
    def delivered(self) -> bool:
        return self.item.state is OutboxState.DELIVERED

    def delivery_report(self) -> DeliveryReport:
        """The report for ingest, with the item's number and edition (``recovery-probe``)."""
        return self.report.to_report(self.item.msisdn, self.item.edition, self.item.submitted_at)


@dataclass
class DispatchSummary:
    """What one dispatch pass did."""

    claimed: int = 0
    submitted: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    requeued_in_doubt: int = 0
    abandoned_in_doubt: int = 0
    items: list[OutboxItem] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "submitted": self.submitted,
            "retried": self.retried,
            "failed": self.failed,
            "expired": self.expired,
            "requeued_in_doubt": self.requeued_in_doubt,
            "abandoned_in_doubt": self.abandoned_in_doubt,
        }


@dataclass
class _Listener:
    callback: OutboxListener
    kind: OutboxKind | None
    states: frozenset[OutboxState] | None


class MmsOutbox:
    """Queues probes and resends, sends them over an ``MmsGateway``, correlates their reports.

    Thread-safe: ``dispatch_once`` runs up to ``policy.concurrency`` senders at a time, and
    ``on_delivery_report`` may be called from any HTTP handler thread meanwhile. The gateway
    should not retry by itself (the outbox retries, persisted, with backoff).
    """

    def __init__(
        self,
        store: MmsOutboxStore,
        gateway: MmsGateway,
        content: ContentSource,
        classifier: Classifier,
        clock: Clock,
        policy: OutboxPolicy | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or OutboxPolicy()
        self._gateway = gateway
        self._content = content
        self._classifier = classifier
        self._clock = clock
        self._listeners: list[_Listener] = []
        self._wakers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # -- listeners ----------------------------------------------------------------------

    def subscribe(
        self,
        callback: OutboxListener,
        kind: OutboxKind | None = None,
        states: Sequence[OutboxState] | None = None,
    ) -> None:
        """Call ``callback(item)`` after each stored change of state (of ``kind``, to ``states``).

        Callbacks run on the thread that made the change; an exception is logged and swallowed
        (the change is already stored).
        """
        with self._lock:
            self._listeners.append(
                _Listener(callback, kind, frozenset(states) if states is not None else None)
            )

    def on_delivered(self, kind: OutboxKind, callback: OutboxListener) -> None:
        """``callback(item)`` when an item of ``kind`` is delivered (a probe: resume delivery)."""
        self.subscribe(callback, kind, (OutboxState.DELIVERED,))

    def add_waker(self, wake: Callable[[], None]) -> None:
        """Called after each enqueue (a dispatcher thread wakes up at once)."""
        with self._lock:
            self._wakers.append(wake)

    def _notify(self, item: OutboxItem) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            if listener.kind is not None and listener.kind is not item.kind:
                continue
            if listener.states is not None and item.state not in listener.states:
                continue
            try:
                listener.callback(item)
            except Exception:
                log.exception("mms_outbox.listener_failed", item_id=item.id, state=str(item.state))

    # -- enqueue ------------------------------------------------------------------------

    def enqueue(
        self,
        kind: OutboxKind | str,
        msisdn: str,
        edition: str,
        reference: str,
        priority: int | None = None,
        content_ref: str | None = None,
        expires_at: datetime | None = None,
    ) -> EnqueueResult:
        """Queue one MM; idempotent by (kind, reference): a repeat returns the stored item.

        A probe's edition is always ``recovery-probe`` (never counted as a newspaper delivery).
        ``msisdn`` must already be E.164.
        """
        kind = OutboxKind(kind)
        if not _E164.fullmatch(msisdn):
            raise ValueError(f"not an E.164 number: {mask_msisdn(msisdn)}")
        if not reference.strip():
            raise ValueError("an outbox item needs a reference (idempotency key)")
        if kind is OutboxKind.PROBE:
            edition = PROBE_EDITION
        elif not edition.strip() or edition == PROBE_EDITION:
            raise ValueError(f"a resend names the edition to resend, not {edition!r}")
        now = self._clock.now()
        item, created = self.store.add(
            NewOutboxItem(
                kind=kind,
                reference=reference.strip(),
                msisdn=msisdn,
                edition=edition,
                priority=DEFAULT_PRIORITY[kind] if priority is None else priority,
                content_ref=content_ref,
                created_at=now,
                expires_at=expires_at or now + self.policy.expiry,
            )
        )
        log.debug(
            "mms_outbox.enqueued" if created else "mms_outbox.enqueue_repeated",
            item_id=item.id,
            kind=str(kind),
            reference=item.reference,
            msisdn=mask_msisdn(msisdn),
            state=str(item.state),
        )
        if created:
            with self._lock:
                wakers = list(self._wakers)
            for wake in wakers:
                wake()
        return EnqueueResult(item, created)

    # -- housekeeping -------------------------------------------------------------------

    def _write(self, old: OutboxItem, **changes: object) -> OutboxItem | None:
        """Compare-and-set one item; None when another writer changed it first."""
        new = replace(old, version=old.version + 1, **changes)  # type: ignore[arg-type]
        return new if self.store.update(old, new) else None

    def expire(self, now: datetime | None = None, summary: DispatchSummary | None = None) -> int:
        """Queued items past ``expires_at`` become ``expired`` (never dropped silently)."""
        now = now or self._clock.now()
        done = 0
        for item in self.store.queued_expired(now, 1000):
            new = self._write(
                item,
                state=OutboxState.EXPIRED,
                updated_at=now,
                final_at=now,
                reason=(
                    f"not sent before {item.expires_at.isoformat()} after {item.attempts} "
                    f"attempt(s)" + (f"; last: {item.reason}" if item.reason else "")
                ),
            )
            if new is not None:
                done += 1
                log.warning(
                    "mms_outbox.expired",
                    item_id=new.id,
                    kind=str(new.kind),
                    reference=new.reference,
                    attempts=new.attempts,
                )
                self._notify(new)
        if summary is not None:
            summary.expired += done
        return done

    def recover(self, now: datetime | None = None, summary: DispatchSummary | None = None) -> int:
        """Claims whose lease ended (their sender died mid-SubmitReq) are in doubt.

        The MMSC may hold the MM under a MessageID nobody stored. Such an item is queued again
        once (``max_in_doubt_resends``); past that it fails with "outcome unknown" rather than
        risk a third copy on the handset.
        """
        now = now or self._clock.now()
        done = 0
        for item in self.store.stale_claims(now, 1000):
            new = self._in_doubt(item, now, "the sender stopped while submitting (no SubmitRsp)")
            if new is None:
                continue
            done += 1
            if summary is not None:
                if new.state is OutboxState.QUEUED:
                    summary.requeued_in_doubt += 1
                else:
                    summary.abandoned_in_doubt += 1
        return done

    def _in_doubt(
        self, item: OutboxItem, now: datetime, why: str, retry_at: datetime | None = None
    ) -> OutboxItem | None:
        in_doubt = item.in_doubt + 1
        reason: str | None = None
        if item.attempts >= self.policy.max_attempts:
            reason = (
                f"gave up after {item.attempts} attempts: {why}; the last may have reached the MMSC"
            )
        elif in_doubt > self.policy.max_in_doubt_resends:
            reason = (
                f"outcome unknown: {why}; the MMSC may have accepted it, not sent again "
                f"({in_doubt} attempt(s) in doubt)"
            )
        if reason is not None:
            new = self._write(
                item,
                state=OutboxState.FAILED,
                in_doubt=in_doubt,
                claim_token=None,
                lease_until=None,
                updated_at=now,
                final_at=now,
                cause=CauseClass.UNKNOWN.value,
                reason=reason,
            )
        else:
            new = self._write(
                item,
                state=OutboxState.QUEUED,
                in_doubt=in_doubt,
                claim_token=None,
                lease_until=None,
                updated_at=now,
                next_attempt_at=retry_at or now,
                reason=f"in doubt: {why}; sent again",
            )
        if new is not None:
            log.warning(
                "mms_outbox.in_doubt",
                item_id=new.id,
                kind=str(new.kind),
                reference=new.reference,
                in_doubt=new.in_doubt,
                state=str(new.state),
            )
            self._notify(new)
        return new

    # -- sending ------------------------------------------------------------------------

    def dispatch_once(
        self, now: datetime | None = None, limit: int = 100, item_id: int | None = None
    ) -> DispatchSummary:
        """Expire, recover stale claims, then send up to ``limit`` due items, highest priority
        first, with up to ``policy.concurrency`` SubmitReq in flight. Blocks until all answered.

        ``item_id`` sends only that item (an operator testing one handset).
        """
        at = now or self._clock.now()
        summary = DispatchSummary()
        self.expire(at, summary)
        self.recover(at, summary)
        budget = [limit]
        budget_lock = threading.Lock()

        def sender() -> None:
            while True:
                with budget_lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                token = uuid.uuid4().hex
                claim_at = now or self._clock.now()
                lease = claim_at + timedelta(seconds=self.policy.lease_s)
                item = self.store.claim_next(claim_at, token, lease, item_id)
                if item is None:
                    return
                result = self._send(item)
                with budget_lock:
                    summary.claimed += 1
                    summary.items.append(result)
                    if result.state is OutboxState.SUBMITTED:
                        summary.submitted += 1
                    elif result.state is OutboxState.QUEUED:
                        summary.retried += 1
                    elif result.state is OutboxState.FAILED:
                        summary.failed += 1

        workers = max(1, min(self.policy.concurrency, limit))
        if workers == 1:
            sender()
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="mms-outbox") as pool:
                for future in [pool.submit(sender) for _ in range(workers)]:
                    future.result()
        if summary.claimed or summary.expired or summary.requeued_in_doubt:
            log.info("mms_outbox.dispatched", **summary.as_dict())
        return summary

    def _send(self, item: OutboxItem) -> OutboxItem:
        """Submit one claimed item and store what the MMSC answered."""
        try:
            content = self._content.content_for(item)
        except ContentUnavailableError as exc:
            now = self._clock.now()
            return self._finish(
                item,
                state=OutboxState.FAILED,
                updated_at=now,
                final_at=now,
                cause=CauseClass.PLATFORM_ERROR.value,
                reason=f"content unavailable: {exc}",
            )
        submission = MmsSubmission(
            msisdn=item.msisdn,
            edition=item.edition,
            content=content,
            reference=f"{item.kind}:{item.reference}",
        )
        try:
            result = self._gateway.submit(submission)
        except Exception as exc:  # a gateway bug must not strand the item in `submitting`
            log.exception("mms_outbox.gateway_error", item_id=item.id)
            result = SubmitResult(
                SubmitOutcome.RETRY, None, f"gateway error: {exc!r}", details={"sent": SENT_MAYBE}
            )
        return self._record(item, result)

    def _record(self, item: OutboxItem, result: SubmitResult) -> OutboxItem:
        now = self._clock.now()
        common: dict[str, object] = {"updated_at": now, "status_code": result.status_code}
        if result.status_text:
            common["status_text"] = result.status_text
        if result.outcome is SubmitOutcome.ACCEPTED and result.message_id:
            new = self._finish(
                item,
                state=OutboxState.SUBMITTED,
                message_id=result.message_id,
                message_key=message_key(result.message_id),
                submitted_at=now,
                reason=None,
                **common,
            )
            if new.state is OutboxState.SUBMITTED and new.message_id == result.message_id:
                self._match_early_reports(new)
            return new
        if result.outcome is SubmitOutcome.REJECTED:
            code = result.status_code
            cause = (
                self._classifier.lookup("mm7", str(code)).cause.value
                if code is not None
                else CauseClass.PLATFORM_ERROR.value
            )
            return self._finish(
                item,
                state=OutboxState.FAILED,
                final_at=now,
                cause=cause,
                reason=f"refused by the MMSC: {code or ''} {result.status_text}".replace("  ", " "),
                **common,
            )
        # RETRY: 3xxx, 4xxx, transport. A 1xxx without a MessageID means the MMSC has the MM
        # but nothing can be correlated with it: in doubt, like an answer lost on the way.
        accepted_blind = result.status_code is not None and result.status_code // 1000 == 1
        if accepted_blind or result.details.get("sent") == SENT_MAYBE:
            current = self._write(item, **common)
            if current is None:
                return self._lost_claim(item, result)
            doubted = self._in_doubt(
                current,
                now,
                f"no answer after sending ({result.status_text})",
                now + self.policy.backoff(item.attempts),
            )
            return doubted if doubted is not None else self._lost_claim(item, result)
        if item.attempts >= self.policy.max_attempts:
            return self._finish(
                item,
                state=OutboxState.FAILED,
                final_at=now,
                cause=CauseClass.NETWORK_TRANSIENT.value,
                reason=f"gave up after {item.attempts} attempts: {result.status_text}",
                **common,
            )
        return self._finish(
            item,
            state=OutboxState.QUEUED,
            next_attempt_at=now + self.policy.backoff(item.attempts),
            reason=f"retry: {result.status_text}",
            **common,
        )

    def _finish(self, item: OutboxItem, **changes: object) -> OutboxItem:
        """End a claim: write the outcome unless the claim was lost meanwhile; notify."""
        new = self._write(item, claim_token=None, lease_until=None, **changes)
        if new is None:
            return self._lost_claim(item, None)
        log.debug(
            "mms_outbox.attempt",
            item_id=new.id,
            kind=str(new.kind),
            reference=new.reference,
            msisdn=mask_msisdn(new.msisdn),
            state=str(new.state),
            attempt=new.attempts,
            status_code=new.status_code,
            message_id=new.message_id,
            reason=new.reason,
        )
        self._notify(new)
        return new

    def _lost_claim(self, item: OutboxItem, result: SubmitResult | None) -> OutboxItem:
        """Someone else wrote the item while this sender held it (its lease ran out)."""
        log.error(
            "mms_outbox.claim_lost",
            item_id=item.id,
            reference=item.reference,
            status_code=result.status_code if result else None,
            hint="mm7.lease_s is shorter than a SubmitReq can take",
        )
        return self.store.get(item.id) or item

    # -- delivery reports ---------------------------------------------------------------

    def on_delivery_report(
        self, report: ReportLike | ReceivedReport | tuple[str, str, str, datetime | None]
    ) -> Correlation | None:
        """Correlate one delivery report by MessageID and record its outcome on the item.

        Returns the correlation (kind, reference, number, edition, outcome), or None when no
        item has that MessageID: the report is then stored as unmatched, and matched later if
        the SubmitRsp with that MessageID is stored afterwards (a report can overtake it).
        """
        received = ReceivedReport.of(report)
        key = message_key(received.message_id)
        item = self.store.find_by_message_key(key)
        if item is None:
            self.store.add_unmatched(received, key, self._clock.now())
            # The SubmitRsp may have been stored between the lookup and now: look again.
            item = self.store.find_by_message_key(key)
            if item is None:
                log.warning(
                    "mms_outbox.report_unmatched",
                    message_id=received.message_id,
                    recipient=mask_msisdn(received.recipient),
                    mm_status=received.mm_status,
                )
                return None
            taken = self.store.take_unmatched(key, item.id, self._clock.now())
            if not taken:
                return None  # the sender matched it meanwhile and applied it
            return self._apply(item, taken[0], late=True)
        return self._apply(item, received)

    def _match_early_reports(self, item: OutboxItem) -> None:
        if item.message_key is None:
            return
        for received in self.store.take_unmatched(item.message_key, item.id, self._clock.now()):
            current = self.store.get(item.id) or item
            self._apply(current, received, late=True)

    def _apply(self, item: OutboxItem, received: ReceivedReport, late: bool = False) -> Correlation:
        classification = self._classifier.lookup("mm7", received.mm_status)
        cause = classification.cause.value
        for _ in range(5):  # compare-and-set: reread and redo when another report won the race
            if item.final:
                log.info(
                    "mms_outbox.report_after_final",
                    item_id=item.id,
                    state=str(item.state),
                    mm_status=received.mm_status,
                )
                return Correlation(item, received, cause, classification.final, False, late)
            now = self._clock.now()
            if classification.cause is CauseClass.DELIVERED:
                changes: dict[str, object] = {
                    "state": OutboxState.DELIVERED,
                    "final_at": now,
                    "reason": None,
                }
            elif classification.final:
                text = f" ({received.status_text})" if received.status_text else ""
                changes = {
                    "state": OutboxState.FAILED,
                    "final_at": now,
                    "reason": f"delivery report: MMStatus {received.mm_status}{text}",
                }
            else:
                changes = {}
            new = self._write(
                item, mm_status=received.mm_status, cause=cause, updated_at=now, **changes
            )
            if new is not None:
                log.debug(
                    "mms_outbox.report",
                    item_id=new.id,
                    kind=str(new.kind),
                    reference=new.reference,
                    msisdn=mask_msisdn(new.msisdn),
                    mm_status=received.mm_status,
                    cause=cause,
                    state=str(new.state),
                    late=late,
                )
                if changes:
                    self._notify(new)
                return Correlation(new, received, cause, classification.final, True, late)
            item = self.store.get(item.id) or item
        raise RuntimeError(f"outbox item {item.id} kept changing while a report was recorded")

    # -- inspection ---------------------------------------------------------------------

    def status(self, reference: str, kind: OutboxKind | None = None) -> list[OutboxItem]:
        return self.store.find(reference, kind)

    def by_message_id(self, message_id: str) -> OutboxItem | None:
        return self.store.find_by_message_key(message_key(message_id))

    def unmatched(self, limit: int = 100) -> list[UnmatchedReport]:
        return self.store.unmatched(limit)

    def busy(self) -> bool:
        """True while an item is queued or in flight (``mmsq mms dispatch --until-idle``)."""
        counts = self.store.counts()
        return bool(counts.get(OutboxState.QUEUED, 0) or counts.get(OutboxState.SUBMITTING, 0))
