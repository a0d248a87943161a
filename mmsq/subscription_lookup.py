"""The subscriptions of one subscriber, as the resend and diagnosis services need them.

mmsq's own status per (MSISDN, product) lives in the subscription store (``mmsq.subscriptions``,
set by billing snapshots and real-time events); ``StoreSubscriptions`` reads it for one number
through a ``SubscriptionReader`` (``SqlSubscriptionStore.subscriptions_of``). A subscriber may
hold several products: the one an agent's question is about is the one named, else the one
``preferred`` picks (active first, then the most recent change). ``InMemorySubscriptions`` is the
test fake.

Suspension here is the operator's (arrears, fraud, a customer request). mmsq's own delivery
suspension (persistent failures) is a recovery state, not a subscription status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from mmsq.subscriptions import Subscription, SubscriptionStatus

__all__ = [
    "InMemorySubscriptions",
    "StoreSubscriptions",
    "SubscriptionLookup",
    "SubscriptionReader",
    "SubscriptionStatus",
    "SubscriptionView",
    "preferred",
]

_RANK = {
    SubscriptionStatus.ACTIVE: 0,
    SubscriptionStatus.SUSPENDED: 1,
    SubscriptionStatus.UNSUBSCRIBED: 2,
    SubscriptionStatus.CANCELLED: 3,
}


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """One subscription: E.164 MSISDN, product, mmsq's status and since when."""

    msisdn: str
    product: str
    status: SubscriptionStatus
    since: datetime | None = None
    channel: str | None = None


def preferred(views: Sequence[SubscriptionView]) -> SubscriptionView | None:
    """The subscription a question about the number is about: an active one if any, else the
    one whose status changed last (so a fresh unsubscribe shows rather than an old cancel)."""
    if not views:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)
    return min(
        views,
        key=lambda v: (_RANK[v.status] > 0, -(v.since or oldest).timestamp(), v.product),
    )


class SubscriptionLookup(Protocol):
    def subscriptions(self, msisdn: str) -> Sequence[SubscriptionView]:
        """Every subscription of an E.164 MSISDN that has a status (empty: not a subscriber)."""
        ...


class SubscriptionReader(Protocol):
    """The single-subscriber read of the subscription store."""

    def subscriptions_of(self, msisdn: str) -> list[Subscription]: ...


class StoreSubscriptions:
    """``SubscriptionLookup`` over the subscription store: mmsq's own status per product.

    Rows whose status nobody has set yet (only a MISC or platform snapshot mentions them) are
    left out: for mmsq that number is not a subscriber of that product.
    """

    def __init__(self, reader: SubscriptionReader) -> None:
        self._reader = reader

    def subscriptions(self, msisdn: str) -> Sequence[SubscriptionView]:
        out = []
        for s in self._reader.subscriptions_of(msisdn):
            if s.state.status is None:
                continue
            ts = s.state.since_ts if s.state.since_ts is not None else s.state.status_ts
            out.append(
                SubscriptionView(
                    msisdn=s.msisdn,
                    product=s.product,
                    status=s.state.status,
                    since=datetime.fromtimestamp(ts, UTC) if ts is not None else None,
                    channel=s.state.channel,
                )
            )
        return out


class InMemorySubscriptions:
    """Subscriptions by MSISDN in a dictionary: the test fake."""

    def __init__(self, views: Iterable[SubscriptionView] = ()) -> None:
        self._views: dict[str, dict[str, SubscriptionView]] = {}
        for v in views:
            self.put(v)

    def put(self, view: SubscriptionView) -> None:
        self._views.setdefault(view.msisdn, {})[view.product] = view

    def subscriptions(self, msisdn: str) -> Sequence[SubscriptionView]:
        return list(self._views.get(msisdn, {}).values())
