"""The subscription status of one subscriber, as the resend and diagnosis services need it.

The subscription store (fed by billing and service management) implements ``SubscriptionLookup``.
Until it exists, ``InMemorySubscriptions`` serves tests and small deployments (loaded from a CSV
file by ``mmsq.adapters.subscriptions_csv``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "SUSPENDED_BY_MMSQ",
    "InMemorySubscriptions",
    "SubscriptionLookup",
    "SubscriptionStatus",
    "SubscriptionView",
]

#: ``SubscriptionView.suspended_by`` when delivery was suspended by mmsq's own recovery process
#: (persistent failures), as opposed to the operator (arrears, fraud, a customer request).
SUSPENDED_BY_MMSQ = "mmsq"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    UNSUBSCRIBED = "unsubscribed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """One subscription: E.164 MSISDN, product, status and, when suspended, by whom."""

    msisdn: str
    product: str
    status: SubscriptionStatus
    suspended_by: str | None = None
    since: datetime | None = None

    @property
    def suspended_by_mmsq(self) -> bool:
        return (
            self.status is SubscriptionStatus.SUSPENDED and self.suspended_by == SUSPENDED_BY_MMSQ
        )


class SubscriptionLookup(Protocol):
    def status(self, msisdn: str) -> SubscriptionView | None:
        """The subscription of an E.164 MSISDN, or None when the number is not a subscriber."""
        ...


class InMemorySubscriptions:
    """A dictionary of subscriptions by MSISDN: the test fake and the interim CSV-backed source."""

    def __init__(self, views: Iterable[SubscriptionView] = ()) -> None:
        self._views = {v.msisdn: v for v in views}

    def put(self, view: SubscriptionView) -> None:
        self._views[view.msisdn] = view

    def status(self, msisdn: str) -> SubscriptionView | None:
        return self._views.get(msisdn)

    def __len__(self) -> int:
        return len(self._views)
