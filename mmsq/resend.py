"""Resend on complaint: an agent asks for an edition to be sent again to one subscriber.

A resend is allowed when the subscription is active, whether or not mmsq has any record of
sending that edition. Neither mmsq's own delivery suspension nor the do-not-contact list stands
in the way: the subscriber asked. When mmsq has suspended bulk delivery to the subscriber
(recovery state ``suspended`` or ``probing``), ``resume_on_delivery`` is set: a delivered resend
proves the handset works again, and the recovery service resumes delivery when it is told.

A resend is recorded here (who, why, which edition, the idempotency key) and handed to the MM7
outbox (``MmsOutbox.enqueue(kind="resend", reference=<resend id>)``), the one sending path for
the MMs mmsq sends itself. Its status is the outbox item's, read by reference: queued,
submitted, delivered or failed with the cause. Every create carries an idempotency key per
agent: the same key and body returns the same resend, the same key with another body is
refused, and concurrent duplicates create one resend (a unique constraint).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import structlog

from mmsq.agents import Agent
from mmsq.mms import PROBE_EDITION
from mmsq.mms_outbox_model import DEFAULT_PRIORITY, OutboxItem, OutboxKind, OutboxState
from mmsq.msisdn import mask_msisdn
from mmsq.ports import Clock
from mmsq.subscription_lookup import SubscriptionLookup, SubscriptionStatus, preferred

__all__ = [
    "RESEND_PRIORITY",
    "DeliverySuspension",
    "DuplicateResendKeyError",
    "EditionSource",
    "IdempotencyConflictError",
    "RecoverySuspension",
    "Refusal",
    "Resend",
    "ResendOutbox",
    "ResendRefusedError",
    "ResendRequest",
    "ResendService",
    "ResendStatus",
    "ResendStore",
    "status_of",
]

log = structlog.get_logger(__name__)

#: The outbox's priority for resends (higher is sooner): ahead of recovery probes.
RESEND_PRIORITY = DEFAULT_PRIORITY[OutboxKind.RESEND]


class ResendStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"


_STATUS_BY_STATE = {
    OutboxState.QUEUED: ResendStatus.QUEUED,
    OutboxState.SUBMITTING: ResendStatus.QUEUED,
    OutboxState.SUBMITTED: ResendStatus.SUBMITTED,
    OutboxState.DELIVERED: ResendStatus.DELIVERED,
    OutboxState.FAILED: ResendStatus.FAILED,
    OutboxState.EXPIRED: ResendStatus.FAILED,
}


def status_of(state: OutboxState) -> ResendStatus:
    """The resend status an outbox state shows as (``submitting`` is still queued: the MMSC
    has not accepted it yet; ``expired`` is a failure)."""
    return _STATUS_BY_STATE[state]


class Refusal(StrEnum):
    """Why a resend was refused; the API turns each into a problem type."""

    SUBSCRIPTION_UNKNOWN = "subscription-unknown"
    SUBSCRIPTION_INACTIVE = "subscription-inactive"
    SUBSCRIPTION_SUSPENDED = "subscription-suspended"
    EDITION_UNKNOWN = "edition-unknown"


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """What the agent asked for; ``msisdn`` already normalised to E.164."""

    msisdn: str
    reason: str
    edition: str | None = None
    complaint_id: str | None = None
    product: str | None = None

    def fingerprint(self) -> str:
        """A digest of the request body, to tell a retry from a different request."""
        fields: list[str | None] = [self.msisdn, self.edition, self.reason, self.complaint_id]
        if self.product is not None:
            fields.append(self.product)
        body = json.dumps(fields, ensure_ascii=False)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Resend:
    """A resend as recorded, with the state of its outbox item (``status`` and the fields
    after it; ``queued`` and empty until the item is read)."""

    id: str
    agent_id: int
    agent_name: str
    idempotency_key: str
    request_hash: str
    msisdn: str
    product: str
    edition: str
    edition_requested: str | None
    reason: str
    complaint_id: str | None
    priority: int
    resume_on_delivery: bool
    created_at: datetime
    status: ResendStatus = ResendStatus.QUEUED
    submitted_at: datetime | None = None
    done_at: datetime | None = None
    message_id: str | None = None
    cause: str | None = None
    cause_class: str | None = None
    attempts: int = 0

    def with_item(self, item: OutboxItem | None) -> Resend:
        """This resend as its outbox item stands."""
        if item is None:
            return self
        failed = item.state in (OutboxState.FAILED, OutboxState.EXPIRED)
        return replace(
            self,
            status=status_of(item.state),
            submitted_at=item.submitted_at,
            done_at=item.final_at,
            message_id=item.message_id,
            cause=(item.reason or item.cause) if failed else None,
            cause_class=item.cause if failed else None,
            attempts=item.attempts,
        )


class ResendRefusedError(Exception):
    """The subscription does not allow a resend; ``refusal`` says why, ``detail`` in words."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


class IdempotencyConflictError(Exception):
    """The idempotency key was used before by this agent for a different request."""

    def __init__(self, existing: Resend) -> None:
        super().__init__(f"idempotency key already used for resend {existing.id} with another body")
        self.existing = existing


class DuplicateResendKeyError(Exception):
    """Raised by a store when (agent, idempotency key) exists already (a concurrent insert)."""


class ResendStore(Protocol):
    def resend_by_key(self, agent_id: int, key: str) -> Resend | None: ...

    def insert_resend(self, resend: Resend) -> None:
        """Insert; raises DuplicateResendKeyError when (agent_id, key) exists (atomically)."""
        ...

    def resend_by_id(self, resend_id: str) -> Resend | None: ...

    def resends_for(self, msisdn: str, limit: int) -> Sequence[Resend]:
        """The latest resends to one subscriber, newest first."""
        ...


class ResendOutbox(Protocol):
    """The part of ``MmsOutbox`` resends use: queue one, read it back by reference."""

    def enqueue(
        self,
        kind: OutboxKind | str,
        msisdn: str,
        edition: str,
        reference: str,
        priority: int | None = None,
        content_ref: str | None = None,
        expires_at: datetime | None = None,
    ) -> object: ...

    def status(self, reference: str, kind: OutboxKind | None = None) -> list[OutboxItem]: ...


class EditionSource(Protocol):
    def latest_edition(self, product: str, msisdn: str) -> str | None:
        """The newest edition of ``product`` (for that subscriber), or None if none is known."""
        ...


class DeliverySuspension(Protocol):
    def delivery_suspended(self, msisdn: str) -> bool:
        """Whether mmsq's recovery process has suspended bulk delivery to this subscriber."""
        ...


class ResendService:
    """Checks eligibility, applies idempotency, records resends and queues them in the outbox."""

    def __init__(
        self,
        *,
        store: ResendStore,
        outbox: ResendOutbox,
        subscriptions: SubscriptionLookup,
        editions: EditionSource,
        suspension: DeliverySuspension,
        clock: Clock,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._subscriptions = subscriptions
        self._editions = editions
        self._suspension = suspension
        self._clock = clock

    def create(self, agent: Agent, key: str, req: ResendRequest) -> tuple[Resend, bool]:
        """The resend for (agent, key): created now (True) or found from an earlier call (False).

        Raises ResendRefusedError or IdempotencyConflictError.
        """
        fingerprint = req.fingerprint()
        existing = self._store.resend_by_key(agent.id, key)
        if existing is not None:
            return self._replay(existing, fingerprint), False
        views = self._subscriptions.subscriptions(req.msisdn)
        if req.product is not None:
            views = [v for v in views if v.product == req.product]
        view = preferred(views)
        if view is None:
            what = f"no subscription to {req.product}" if req.product else "no subscription"
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_UNKNOWN,
                f"{mask_msisdn(req.msisdn)} has {what}: there is nothing to resend",
            )
        if view.status in (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.CANCELLED):
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_INACTIVE,
                f"the subscription to {view.product} is {view.status.value}"
                + (f" since {view.since:%Y-%m-%d}" if view.since else "")
                + ": only active subscribers get resends",
            )
        if view.status is SubscriptionStatus.SUSPENDED:
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_SUSPENDED,
                f"the subscription to {view.product} is suspended by the operator"
                + (f" since {view.since:%Y-%m-%d}" if view.since else "")
                + " (billing or the service platform): only active subscribers get resends",
            )
        edition = req.edition or self._editions.latest_edition(view.product, req.msisdn)
        if not edition or edition == PROBE_EDITION:
            raise ResendRefusedError(
                Refusal.EDITION_UNKNOWN,
                f"no edition was given and no edition of {view.product} is known yet",
            )
        resume = self._suspension.delivery_suspended(req.msisdn)
        resend = Resend(
            id="rs_" + secrets.token_hex(10),
            agent_id=agent.id,
            agent_name=agent.name,
            idempotency_key=key,
            request_hash=fingerprint,
            msisdn=req.msisdn,
            product=view.product,
            edition=edition,
            edition_requested=req.edition,
            reason=req.reason,
            complaint_id=req.complaint_id,
            priority=RESEND_PRIORITY,
            resume_on_delivery=resume,
            created_at=self._clock.now(),
        )
        try:
            self._store.insert_resend(resend)
        except DuplicateResendKeyError:
            # A concurrent call with the same key won the insert: answer with its resend.
            winner = self._store.resend_by_key(agent.id, key)
            if winner is None:  # pragma: no cover - the constraint said it exists
                raise
            return self._replay(winner, fingerprint), False
        # Recorded first, queued second: a crash in between leaves a resend without an item,
        # which the next read (or a retry with the same key) queues; never an MM without record.
        self._enqueue(resend)
        log.info(
            "resend queued",
            resend_id=resend.id,
            msisdn=req.msisdn,
            edition=edition,
            agent=agent.name,
            resume_on_delivery=resume,
        )
        return self._with_item(resend), True

    def _replay(self, existing: Resend, fingerprint: str) -> Resend:
        if existing.request_hash != fingerprint:
            raise IdempotencyConflictError(existing)
        return self._with_item(existing)

    def _enqueue(self, resend: Resend) -> None:
        self._outbox.enqueue(
            OutboxKind.RESEND,
            resend.msisdn,
            resend.edition,
            resend.id,
            priority=resend.priority,
        )

    def _with_item(self, resend: Resend) -> Resend:
        items = self._outbox.status(resend.id, OutboxKind.RESEND)
        if not items:
            self._enqueue(resend)  # idempotent by (kind, reference)
            items = self._outbox.status(resend.id, OutboxKind.RESEND)
        return resend.with_item(items[0] if items else None)

    def get(self, resend_id: str) -> Resend | None:
        resend = self._store.resend_by_id(resend_id)
        return self._with_item(resend) if resend is not None else None

    def recent_for(self, msisdn: str, limit: int = 5) -> Sequence[Resend]:
        return [self._with_item(r) for r in self._store.resends_for(msisdn, limit)]


class _RecoveryView(Protocol):
    @property
    def delivery_suspended(self) -> bool: ...


class _RecoveryReader(Protocol):
    def subscriber(self, msisdn: str, transitions: int = 20) -> _RecoveryView | None: ...


class RecoverySuspension:
    """``DeliverySuspension`` from the recovery state (``suspended`` or ``probing``)."""

    def __init__(self, recovery: _RecoveryReader) -> None:
        self._recovery = recovery

    def delivery_suspended(self, msisdn: str) -> bool:
        r = self._recovery.subscriber(msisdn, 1)
        return r is not None and r.delivery_suspended
