"""Resend on complaint: an agent asks for an edition to be sent again to one subscriber.

A resend is allowed when the subscription is active, or suspended by mmsq's own delivery
suspension (then ``resume_on_delivery`` is set: a delivered resend proves the handset works again,
like a recovery probe). It does not matter whether mmsq has any record of sending that edition,
and contact suppression (do-not-contact lists) does not apply: the subscriber asked for it.

Resends are persisted and queued with a priority ahead of bulk traffic; the dispatcher hands
them to a ``ResendSender`` (the MM7 adapter sends an MM7 SubmitReq). Every create carries an
idempotency key per agent: the same key and body returns the same resend, the same key with
another body is refused, and concurrent duplicates create one resend (a unique constraint).
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
from mmsq.msisdn import mask_msisdn
from mmsq.ports import Clock
from mmsq.subscription_lookup import SubscriptionLookup, SubscriptionStatus

__all__ = [
    "BULK_PRIORITY",
    "RESEND_PRIORITY",
    "DeliverySuspension",
    "DuplicateResendKeyError",
    "EditionSource",
    "IdempotencyConflictError",
    "NoSuspension",
    "Refusal",
    "Resend",
    "ResendDispatcher",
    "ResendRefusedError",
    "ResendRequest",
    "ResendSendError",
    "ResendSender",
    "ResendService",
    "ResendStatus",
    "ResendStore",
]

log = structlog.get_logger(__name__)

#: Lower is sooner. Bulk edition traffic is queued at BULK_PRIORITY; resends jump ahead of it.
RESEND_PRIORITY = 10
BULK_PRIORITY = 100


class ResendStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"


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

    def fingerprint(self) -> str:
        """A digest of the request body, to tell a retry from a different request."""
        body = json.dumps(
            [self.msisdn, self.edition, self.reason, self.complaint_id], ensure_ascii=False
        )
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Resend:
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
    status: ResendStatus
    created_at: datetime
    submitted_at: datetime | None = None
    done_at: datetime | None = None
    message_id: str | None = None
    cause: str | None = None


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

    def queued_resends(self, limit: int) -> Sequence[Resend]:
        """Queued resends in dispatch order: priority, then age."""
        ...

    def update_resend(self, resend: Resend) -> None:
        """Store the new status, timestamps, message id and cause of a resend."""
        ...


class EditionSource(Protocol):
    def latest_edition(self, product: str, msisdn: str) -> str | None:
        """The newest edition of ``product`` (for that subscriber), or None if none is known."""
        ...


class DeliverySuspension(Protocol):
    def delivery_suspended(self, msisdn: str) -> bool:
        """Whether mmsq's recovery process has suspended bulk delivery to this subscriber."""
        ...


class NoSuspension:
    """Until the recovery state machine exists: nobody is suspended by it."""

    def delivery_suspended(self, msisdn: str) -> bool:
        return False


class ResendService:
    """Checks eligibility, applies idempotency, persists and queues resends."""

    def __init__(
        self,
        *,
        store: ResendStore,
        subscriptions: SubscriptionLookup,
        editions: EditionSource,
        suspension: DeliverySuspension,
        clock: Clock,
    ) -> None:
        self._store = store
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
        view = self._subscriptions.status(req.msisdn)
        if view is None:
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_UNKNOWN,
                f"{mask_msisdn(req.msisdn)} has no subscription: there is nothing to resend",
            )
        if view.status in (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.CANCELLED):
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_INACTIVE,
                f"the subscription to {view.product} is {view.status.value}"
                + (f" since {view.since:%Y-%m-%d}" if view.since else "")
                + ": only active subscribers get resends",
            )
        if view.status is SubscriptionStatus.SUSPENDED and not view.suspended_by_mmsq:
            raise ResendRefusedError(
                Refusal.SUBSCRIPTION_SUSPENDED,
                f"the subscription to {view.product} is suspended by "
                f"{view.suspended_by or 'the operator'}, not by mmsq's delivery suspension",
            )
        edition = req.edition or self._editions.latest_edition(view.product, req.msisdn)
        if not edition:
            raise ResendRefusedError(
                Refusal.EDITION_UNKNOWN,
                f"no edition was given and no edition of {view.product} is known yet",
            )
        resume = view.suspended_by_mmsq or self._suspension.delivery_suspended(req.msisdn)
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
            status=ResendStatus.QUEUED,
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
        log.info(
            "resend queued",
            resend_id=resend.id,
            msisdn=req.msisdn,
            edition=edition,
            agent=agent.name,
            resume_on_delivery=resume,
        )
        return resend, True

    @staticmethod
    def _replay(existing: Resend, fingerprint: str) -> Resend:
        if existing.request_hash != fingerprint:
            raise IdempotencyConflictError(existing)
        return existing

    def get(self, resend_id: str) -> Resend | None:
        return self._store.resend_by_id(resend_id)

    def recent_for(self, msisdn: str, limit: int = 5) -> Sequence[Resend]:
        return self._store.resends_for(msisdn, limit)


class ResendSendError(Exception):
    """The sender could not submit the resend; ``cause`` is recorded on it."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class ResendSender(Protocol):
    def submit(self, resend: Resend) -> str:
        """Send the resend (an MM7 SubmitReq); returns the MMSC message id."""
        ...


class ResendDispatcher:
    """Drains the resend queue into a sender and records delivery outcomes.

    One dispatcher runs at a time (the daemon's job); a crash between submit and the status
    update can resend once more, which a complaint resend tolerates better than a loss.
    """

    def __init__(self, store: ResendStore, sender: ResendSender, clock: Clock) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock

    def run_once(self, limit: int = 100) -> int:
        """Submit up to ``limit`` queued resends; returns how many were handled."""
        handled = 0
        for resend in self._store.queued_resends(limit):
            try:
                message_id = self._sender.submit(resend)
            except ResendSendError as exc:
                self._store.update_resend(
                    replace(
                        resend,
                        status=ResendStatus.FAILED,
                        cause=exc.cause,
                        done_at=self._clock.now(),
                    )
                )
            else:
                self._store.update_resend(
                    replace(
                        resend,
                        status=ResendStatus.SUBMITTED,
                        message_id=message_id,
                        submitted_at=self._clock.now(),
                    )
                )
            handled += 1
        return handled

    def record_outcome(self, resend_id: str, delivered: bool, cause: str | None) -> Resend | None:
        """Record the delivery report of a submitted resend (delivered, or failed with cause)."""
        resend = self._store.resend_by_id(resend_id)
        if resend is None:
            return None
        done = replace(
            resend,
            status=ResendStatus.DELIVERED if delivered else ResendStatus.FAILED,
            cause=None if delivered else cause,
            done_at=self._clock.now(),
        )
        self._store.update_resend(done)
        return done
