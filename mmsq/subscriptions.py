"""Subscriptions: who should receive which product, as mmsq and each source system see it.

Three systems decide whether a subscriber gets the newspaper and drift apart: billing (BOSS)
charges, service management (MISC) holds the order relationship, the content platform holds the
send list. mmsq keeps one row per (MSISDN, product) with its own status and the status each
source reported in its latest snapshot. Billing is the reference: its snapshot sets mmsq's own
status, and the content platform is repaired towards it (what is paid for is sent).

This module holds the domain values and the pure rules; the services that use them live in
``subscription_import``, ``subscription_events`` and ``reconcile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "REFERENCE_SOURCE",
    "STATUS_CODES",
    "DifferenceClass",
    "EventKind",
    "EventOutcome",
    "EventResult",
    "Source",
    "SourceView",
    "Subscription",
    "SubscriptionEvent",
    "SubscriptionState",
    "SubscriptionStatus",
    "Transition",
    "decide",
]


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    UNSUBSCRIBED = "unsubscribed"
    CANCELLED = "cancelled"


#: Compact codes used by the vectorised reconciliation: 0 means "absent from the source".
STATUS_CODES: dict[SubscriptionStatus, int] = {s: i + 1 for i, s in enumerate(SubscriptionStatus)}


class Source(StrEnum):
    """The three systems that each hold a copy of the subscription list."""

    BOSS = "boss"
    MISC = "misc"
    PLATFORM = "platform"


#: The source whose snapshot sets mmsq's own status and towards which the platform is repaired.
REFERENCE_SOURCE = Source.BOSS


class EventKind(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    SUSPEND = "suspend"
    RESUME = "resume"
    CANCEL = "cancel"


class EventOutcome(StrEnum):
    """What a real-time change did. Every event is stored, whatever its outcome."""

    APPLIED = "applied"  # the status changed
    UNCHANGED = "unchanged"  # the subscription was already in that status
    REJECTED = "rejected"  # not a valid transition (resume of an unsubscribed product, ...)
    STALE = "stale"  # older than the state it would change: kept, not applied
    DUPLICATE = "duplicate"  # this event id was seen before: nothing changes


class DifferenceClass(StrEnum):
    """How the three sources disagree about one (MSISDN, product); see docs in README."""

    BILLED_NOT_ON_SEND_LIST = "billed_not_on_send_list"
    ON_SEND_LIST_NOT_BILLED = "on_send_list_not_billed"
    STATUS_MISMATCH = "status_mismatch"
    PRODUCT_MISMATCH = "product_mismatch"
    MISSING_IN_MISC = "missing_in_misc"


class SubscriptionEvent(BaseModel):
    """A real-time subscription change; also the body of ``POST /v1/subscription-events``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    event_id: str = Field(
        min_length=1, max_length=64, description="unique per change; retries reuse it"
    )
    msisdn: str = Field(min_length=1, max_length=32, description="national or E.164")
    product: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    kind: EventKind
    event_time: AwareDatetime = Field(description="when the change happened at the source")
    source: Source
    channel: str | None = Field(
        default=None, max_length=32, description="how the subscription came (sms, web, ...)"
    )


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """mmsq's own status of one (MSISDN, product) and when it was set (UTC epoch seconds)."""

    status: SubscriptionStatus | None
    status_ts: int | None
    since_ts: int | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class SourceView:
    """What one source said in its snapshot of ``as_of`` (``status`` None: not in it)."""

    status: SubscriptionStatus | None
    as_of: date | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """The stored record: mmsq's status plus each source's status with its snapshot date."""

    msisdn: str
    product: str
    state: SubscriptionState
    sources: dict[Source, SourceView]

    @property
    def status(self) -> SubscriptionStatus | None:
        return self.state.status

    @property
    def active(self) -> bool:
        return self.state.status is SubscriptionStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Transition:
    """The decision for one event: its outcome and, when applied, the new status."""

    outcome: EventOutcome
    status: SubscriptionStatus | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EventResult:
    """What ``apply_event`` answers (and what the HTTP endpoint will return)."""

    event_id: str
    outcome: EventOutcome
    status: SubscriptionStatus | None
    previous_status: SubscriptionStatus | None
    reason: str = ""


_A, _S, _U, _C = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.SUSPENDED,
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.CANCELLED,
)
# kind -> (target status, statuses it may start from; None stands for "no subscription yet").
_TRANSITIONS: dict[EventKind, tuple[SubscriptionStatus, frozenset[SubscriptionStatus | None]]] = {
    EventKind.SUBSCRIBE: (_A, frozenset({None, _U, _C, _S})),
    EventKind.UNSUBSCRIBE: (_U, frozenset({_A, _S})),
    EventKind.SUSPEND: (_S, frozenset({_A})),
    EventKind.RESUME: (_A, frozenset({_S})),
    EventKind.CANCEL: (_C, frozenset({None, _A, _S, _U})),
}


def decide(state: SubscriptionState | None, kind: EventKind, event_ts: int) -> Transition:
    """The pure rule for one real-time change.

    An event older than the state it would change is stale: the state was set by something that
    happened later (a newer event, or a snapshot taken after it), so applying it would roll
    the subscription back.
    """
    current = state.status if state else None
    if state is not None and state.status_ts is not None and event_ts < state.status_ts:
        return Transition(EventOutcome.STALE, current, "older than the current state")
    target, allowed = _TRANSITIONS[kind]
    if current is target:
        return Transition(EventOutcome.UNCHANGED, current, f"already {target}")
    if current not in allowed:
        was = current.value if current else "no subscription"
        return Transition(EventOutcome.REJECTED, current, f"cannot {kind} from {was}")
    return Transition(EventOutcome.APPLIED, target)
