"""The outreach outbox: planned contacts, their SMS segments, and the ports around them.

A contact (one help SMS or one OTA push to one subscriber) is stored with all its SMS segments
before anything is sent. Dispatch moves each segment through ``planned -> submitting ->
accepted`` (the SMSC answered submit_sm with a message id) and then, by delivery receipt, the
contact to ``delivered`` or ``failed``; a contact that could not be sent in time ends
``expired`` with the reason. See docs/outreach.md for the states and the crash-safety bound.

Nothing here does I/O: the store (``OutboxStore``), the SMPP link (``SmsGateway``) and the
metrics sink (``OutreachMetrics``) are ports implemented elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "FINAL_STATES",
    "ContactState",
    "CountingMetrics",
    "Decision",
    "GatewayEvent",
    "NullMetrics",
    "OutboxStatus",
    "OutboxStore",
    "OutreachMetrics",
    "PlannedContact",
    "PlannedSegment",
    "Receipt",
    "ReceiptMatch",
    "SegmentKey",
    "SegmentState",
    "SmsGateway",
    "SubmitRequest",
    "SubmitResult",
    "epoch_ms",
]


class ContactState(StrEnum):
    """Where one contact stands; ``delivered``, ``failed`` and ``expired`` are final."""

    PLANNED = "planned"
    SUBMITTING = "submitting"  # at least one segment handed to the SMSC link
    ACCEPTED = "accepted"  # every segment answered with a message id
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


class SegmentState(StrEnum):
    """Where one SMS segment stands."""

    PLANNED = "planned"
    SUBMITTING = "submitting"  # marked in the database before its PDU is written
    ACCEPTED = "accepted"  # submit_sm_resp OK stored, with the SMSC's message id
    DELIVERED = "delivered"  # its first receipt said DELIVRD
    FAILED = "failed"
    EXPIRED = "expired"


FINAL_STATES = frozenset({ContactState.DELIVERED, ContactState.FAILED, ContactState.EXPIRED})

#: (contact id, segment number from 1): identifies one segment everywhere.
SegmentKey = tuple[int, int]


def epoch_ms(t: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (how the outbox stores times)."""
    return int(t.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """One submit_sm's worth of user data (UDH included when ``esm_class`` has UDHI)."""

    short_message: bytes
    esm_class: int
    data_coding: int


@dataclass(frozen=True)
class PlannedContact:
    """A contact ready to be stored: who, why, what, and the segments that carry it."""

    idempotency_key: str
    msisdn: str
    action: str
    reason: str
    template: str | None
    step: int
    text: str | None
    region: str | None
    not_before: datetime
    expires_at: datetime
    segments: tuple[PlannedSegment, ...]
    detail: str | None = None  # e.g. the OTA security decision


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision not to contact someone (or not to push), with its reason."""

    msisdn: str
    reason: str  # the verdict the contact would have been about
    decision: str  # skip code: blacklist, holdout, tier_cap, budget, ota_no_push, ...
    day: str  # the planning day (YYYY-MM-DD): one decision per subscriber, reason and day
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One segment for the SMSC link; ``key`` comes back with its result."""

    key: SegmentKey
    destination: str
    short_message: bytes
    esm_class: int
    data_coding: int


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The SMSC's answer to one submit_sm (``status`` 0 with a message id when accepted).

    ``status`` -1 means the link gave up on the segment without an answer (stopped).
    """

    key: SegmentKey
    status: int
    message_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as read from a deliver_sm; ``message_id`` as sent by the SMSC."""

    message_id: str
    stat: str | None
    err: str | None
    at: datetime
    source_addr: str | None = None
    text: str | None = None


GatewayEvent = SubmitResult | Receipt


@dataclass(frozen=True, slots=True)
class ReceiptMatch:
    """What storing one receipt did: matched a segment (and maybe decided its contact)."""

    matched: bool
    stat: str | None = None
    lag_s: float | None = None  # receipt time minus the time the SMSC accepted the segment
    duplicate: bool = False  # the segment already had a receipt (the first one wins)


@dataclass(frozen=True)
class OutboxStatus:
    """Counts for ``mmsq outreach status`` and the metrics."""

    contacts: dict[str, int]
    segments: dict[str, int]
    decisions: dict[str, int]
    unmatched_receipts: int
    waiting_receipts: int
    oldest_planned: datetime | None


class OutboxStore(Protocol):
    """Persistence of the outbox. Every method is one transaction."""

    def add_planned(
        self, contacts: Sequence[PlannedContact], decisions: Sequence[Decision], now: datetime
    ) -> tuple[int, int]:
        """Store contacts (a known idempotency key is skipped) and decisions; (new, known)."""
        ...

    def contact_history(self, since: datetime) -> list[tuple[str, str, str, datetime]]:
        """(msisdn, action, reason, planned at) of contacts that count against the caps."""
        ...

    def tacs(self, msisdns: Sequence[str]) -> dict[str, str]:
        """The TAC of each subscriber's latest handset, where known."""
        ...

    def requeue_in_flight(self, now: datetime) -> int:
        """After a restart: segments marked submitting with no stored response go back to
        planned. Returns how many."""
        ...

    def claim(
        self, limit: int, now: datetime, blocked_regions: dict[str | None, datetime]
    ) -> list[SubmitRequest]:
        """Mark up to ``limit`` due planned segments as submitting (oldest contact first, in
        segment order) and return them. Contacts of a blocked region get its next send time."""
        ...

    def due_regions(self, now: datetime) -> list[str | None]:
        """The regions of contacts with planned segments due now."""
        ...

    def record_results(
        self,
        results: Sequence[SubmitResult],
        classify_status: Callable[[int], str | None],
        classify_receipt: Callable[[str, str | None], str],
        now: datetime,
    ) -> list[ReceiptMatch]:
        """Store submit_sm answers. ``classify_status(status)`` is None for a status worth
        retrying (back to planned, later), else the cause class of a final failure. Receipts
        that were waiting for these answers are matched now and returned."""
        ...

    def record_receipts(
        self, receipts: Sequence[Receipt], classify_receipt: Callable[[str, str | None], str]
    ) -> list[ReceiptMatch]:
        """Match receipts to segments (the first receipt of a segment wins; the first final
        receipt of any segment decides the contact). Unmatched ones wait for their submit
        response. ``classify_receipt(stat, err)`` gives the cause class of a failure."""
        ...

    def settle_waiting_receipts(self, older_than: datetime) -> int:
        """Receipts still unmatched after the grace period become unmatched for good."""
        ...

    def expire(self, now: datetime, reason: str | None = None) -> int:
        """Contacts past their expiry (or whose next send time falls after it) with segments not
        yet sent end expired, with the reason (``reason`` when the cause is not quiet hours)."""
        ...

    def pending(self, now: datetime) -> tuple[int, datetime | None]:
        """(planned segments due now, the next not-before time of those not yet due)."""
        ...

    def awaiting_outcome(self) -> int:
        """Contacts sent (or being sent) whose outcome is not known yet."""
        ...

    def status(self) -> OutboxStatus: ...


class SmsGateway(Protocol):
    """The SMSC link: accepts segments, reports answers and receipts through ``sink``."""

    def start(self, sink: Callable[[GatewayEvent], None]) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def submit(self, requests: Sequence[SubmitRequest]) -> None:
        """Queue segments; thread-safe; they are sent in this order."""
        ...

    def healthy(self) -> bool:
        """Bound and able to send (for /readyz)."""
        ...

    @property
    def state(self) -> str: ...


class OutreachMetrics(Protocol):
    """What the daemon exports (prometheus); every call is cheap and thread-safe enough."""

    def queue_depth(self, planned: int, in_flight: int) -> None: ...

    def submitted(self, segments: int) -> None: ...

    def submit_result(self, outcome: str) -> None:
        """``accepted``, ``retry`` or the cause class of a permanent error."""
        ...

    def throttled(self, bind: str) -> None: ...

    def receipt(self, stat: str, lag_s: float | None) -> None: ...

    def unmatched_receipt(self, count: int = 1) -> None: ...

    def bind_state(self, bind: str, state: str) -> None: ...


class NullMetrics:
    """Metrics that go nowhere."""

    def queue_depth(self, planned: int, in_flight: int) -> None:
        pass

    def submitted(self, segments: int) -> None:
        pass

    def submit_result(self, outcome: str) -> None:
        pass

    def throttled(self, bind: str) -> None:
        pass

    def receipt(self, stat: str, lag_s: float | None) -> None:
        pass

    def unmatched_receipt(self, count: int = 1) -> None:
        pass

    def bind_state(self, bind: str, state: str) -> None:
        pass


@dataclass
class CountingMetrics:
    """Metrics kept in memory: for the CLI summary and for tests."""

    planned: int = 0
    in_flight: int = 0
    submits: int = 0
    results: dict[str, int] = field(default_factory=dict)
    throttle_events: int = 0
    receipts: dict[str, int] = field(default_factory=dict)
    receipt_lags: list[float] = field(default_factory=list)
    unmatched: int = 0
    binds: dict[str, str] = field(default_factory=dict)

    def queue_depth(self, planned: int, in_flight: int) -> None:
        self.planned, self.in_flight = planned, in_flight

    def submitted(self, segments: int) -> None:
        self.submits += segments

    def submit_result(self, outcome: str) -> None:
        self.results[outcome] = self.results.get(outcome, 0) + 1

    def throttled(self, bind: str) -> None:
        self.throttle_events += 1

    def receipt(self, stat: str, lag_s: float | None) -> None:
        self.receipts[stat] = self.receipts.get(stat, 0) + 1
        if lag_s is not None and len(self.receipt_lags) < 100_000:
            self.receipt_lags.append(lag_s)

    def unmatched_receipt(self, count: int = 1) -> None:
        self.unmatched += count

    def bind_state(self, bind: str, state: str) -> None:
        self.binds[bind] = state

    def as_dict(self) -> dict[str, object]:
        lags = sorted(self.receipt_lags)
        return {
            "submits": self.submits,
            "results": dict(self.results),
            "throttled": self.throttle_events,
            "receipts": dict(self.receipts),
            "receipt_lag_p50_s": lags[len(lags) // 2] if lags else None,
            "unmatched_receipts": self.unmatched,
            "binds": dict(self.binds),
        }
