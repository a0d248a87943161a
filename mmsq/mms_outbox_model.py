"""The outbox of the MMs mmsq sends itself: items, their states, reports, and the store port.

Two kinds of MM go through it: recovery probes (a small MM to a suspended subscriber, edition
``recovery-probe``) and resends asked for by customer-service agents (the edition the subscriber
complained about). Every item is persisted before anything is sent, so a crash loses nothing;
``mmsq.mms_outbox`` holds the service that moves items from state to state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from mmsq.domain import DeliveryReport

__all__ = [
    "DEFAULT_PRIORITY",
    "FINAL_STATES",
    "MmsOutboxStore",
    "NewOutboxItem",
    "OutboxItem",
    "OutboxKind",
    "OutboxState",
    "ReceivedReport",
    "ReportLike",
    "UnmatchedReport",
    "message_key",
]


class OutboxKind(StrEnum):
    PROBE = "probe"  # a recovery probe to a suspended subscriber
    RESEND = "resend"  # an agent's resend of an edition


class OutboxState(StrEnum):
    """Where an item is. ``submitting`` is written before the HTTP request goes out."""

    QUEUED = "queued"  # waiting to be sent (first time, or again after a transient refusal)
    SUBMITTING = "submitting"  # claimed by a sender; the SubmitReq may be on the wire
    SUBMITTED = "submitted"  # the MMSC answered 1000 with a MessageID; awaiting the report
    DELIVERED = "delivered"  # the report said Retrieved
    FAILED = "failed"  # refused (2xxx), gave up, outcome unknown, or a failed report
    EXPIRED = "expired"  # not sent before ``expires_at``


FINAL_STATES = frozenset({OutboxState.DELIVERED, OutboxState.FAILED, OutboxState.EXPIRED})

#: Resends (a subscriber is waiting on the phone) go ahead of probes; anything bulk sits below 0.
DEFAULT_PRIORITY: Mapping[OutboxKind, int] = {OutboxKind.RESEND: 100, OutboxKind.PROBE: 10}


def message_key(message_id: str) -> str:
    """The MessageID as correlated: surrounding blanks and angle brackets off, letter case folded.

    MMSCs echo their own MessageIDs in reports, but gateways between them change case and
    padding; a MessageID is opaque otherwise (no hex/decimal guessing).
    """
    return message_id.strip().strip("<>").strip().lower()


@dataclass(frozen=True, slots=True)
class NewOutboxItem:
    """What ``enqueue`` persists; (kind, reference) identifies it."""

    kind: OutboxKind
    reference: str
    msisdn: str
    edition: str
    priority: int
    content_ref: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One MM in the outbox, as stored. ``version`` grows with every write (compare-and-set).

    ``attempts`` counts SubmitReq attempts started (a claim counts one); ``in_doubt`` counts
    attempts whose outcome is unknown (the process ended while submitting, or the answer was
    lost after the request went out). ``reason`` says why an item failed or expired, or why its
    last attempt is being retried. ``cause`` is the cause class of the final status.
    """

    id: int
    kind: OutboxKind
    reference: str
    msisdn: str
    edition: str
    priority: int
    content_ref: str | None
    state: OutboxState
    version: int
    attempts: int
    in_doubt: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    expires_at: datetime
    claim_token: str | None = None
    lease_until: datetime | None = None
    message_id: str | None = None
    message_key: str | None = None
    submitted_at: datetime | None = None
    final_at: datetime | None = None
    status_code: int | None = None
    status_text: str | None = None
    mm_status: str | None = None
    cause: str | None = None
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON (times as ISO 8601); the MSISDN in full: callers mask it."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@runtime_checkable
class ReportLike(Protocol):
    """What correlation reads from a delivery report (``Mm7DeliveryReport`` has it all)."""

    @property
    def message_id(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def mm_status(self) -> str: ...
    @property
    def date(self) -> datetime | None: ...
    @property
    def status_text(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """A delivery report as the outbox keeps it: MessageID, recipient, MMStatus, when done."""

    message_id: str
    recipient: str
    mm_status: str
    date: datetime | None = None
    status_text: str | None = None

    @classmethod
    def of(
        cls, report: ReportLike | tuple[str, str, str, datetime | None] | ReceivedReport
    ) -> ReceivedReport:
        """From an ``Mm7DeliveryReport`` (or anything shaped like it) or a 4-tuple
        (message_id, recipient, mm_status, done_at)."""
        if isinstance(report, tuple):
            message_id, recipient, mm_status, done_at = report
            return cls(message_id, recipient, mm_status, done_at)
        return cls(
            report.message_id, report.recipient, report.mm_status, report.date, report.status_text
        )

    def to_report(
        self, msisdn: str, edition: str | None, submitted_at: datetime | None
    ) -> DeliveryReport:
        return DeliveryReport(
            msisdn=msisdn,
            message_id=self.message_id,
            status_source="mm7",
            status_code=self.mm_status,
            submitted_at=submitted_at,
            done_at=self.date,
            edition=edition,
        )


@dataclass(frozen=True, slots=True)
class UnmatchedReport:
    """A report whose MessageID matched no item when it came, kept for inspection."""

    id: int
    report: ReceivedReport
    received_at: datetime
    matched_item_id: int | None = None
    matched_at: datetime | None = None


class MmsOutboxStore(Protocol):
    """Persistence of outbox items and of reports that matched none. Thread-safe.

    Every method commits before it returns: a crash after a call never loses what it wrote.
    """

    def add(self, item: NewOutboxItem) -> tuple[OutboxItem, bool]:
        """Store a new item, or return the one with the same (kind, reference); True if new."""
        ...

    def get(self, item_id: int) -> OutboxItem | None: ...

    def find(self, reference: str, kind: OutboxKind | None = None) -> list[OutboxItem]: ...

    def find_by_message_key(self, key: str) -> OutboxItem | None: ...

    def claim_next(
        self, now: datetime, token: str, lease_until: datetime, item_id: int | None = None
    ) -> OutboxItem | None:
        """Atomically take the queued item due at ``now`` with the highest priority (oldest
        first among equals; only ``item_id`` when given) and not expired: state ``submitting``,
        ``claim_token``, ``lease_until``, one more attempt. None when there is none."""
        ...

    def update(self, old: OutboxItem, new: OutboxItem) -> bool:
        """Write ``new``'s mutable fields if the stored item is still at ``old.version`` (then
        at ``old.version + 1``, which ``new`` must carry); False if someone wrote it first."""
        ...

    def queued_expired(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Queued items whose ``expires_at`` is at or before ``now``."""
        ...

    def stale_claims(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Items in ``submitting`` whose lease ended at or before ``now`` (their sender died)."""
        ...

    def next_wakeup(self) -> datetime | None:
        """The earliest ``next_attempt_at`` of a queued item or ``lease_until`` of a claim."""
        ...

    def counts(self) -> dict[str, int]:
        """Items per state."""
        ...

    def add_unmatched(self, report: ReceivedReport, key: str, received_at: datetime) -> None: ...

    def take_unmatched(self, key: str, item_id: int, matched_at: datetime) -> list[ReceivedReport]:
        """Mark the unmatched reports with this MessageID key as matched to ``item_id`` and
        return them; each report is returned to one caller only."""
        ...

    def unmatched(
        self, limit: int = 100, include_matched: bool = False
    ) -> list[UnmatchedReport]: ...

    def unmatched_count(self) -> int:
        """Reports still matched to no item."""
        ...
