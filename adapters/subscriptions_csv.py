"""An interim ``SubscriptionLookup``: a CSV file of subscriptions, read once into memory.

Columns ``msisdn,product,status`` and optionally ``suspended_by`` (``mmsq`` for mmsq's own
delivery suspension). Stands in until the subscription store (fed by billing and service
management) is wired into the API; rows that cannot be read are skipped and counted.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from mmsq.msisdn import MsisdnNormaliser
from mmsq.subscription_lookup import InMemorySubscriptions, SubscriptionStatus, SubscriptionView

__all__ = ["CsvSubscriptions", "load_subscriptions_csv"]

_STATUSES = frozenset(s.value for s in SubscriptionStatus)


@dataclass(frozen=True)
class CsvSubscriptions:
    lookup: InMemorySubscriptions
    loaded: int
    skipped: int


def load_subscriptions_csv(path: Path, normaliser: MsisdnNormaliser) -> CsvSubscriptions:
    lookup = InMemorySubscriptions()
    loaded = skipped = 0
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            msisdn = normaliser.normalise(row.get("msisdn") or "")
            status = (row.get("status") or "").strip().lower()
            product = (row.get("product") or "").strip()
            if (
                msisdn is None
                or not product
                or status not in SubscriptionStatus.__members__.values()
            ):
                skipped += 1
                continue
            lookup.put(
                SubscriptionView(
                    msisdn=msisdn,
                    product=product,
                    status=SubscriptionStatus(status),
                    suspended_by=(row.get("suspended_by") or "").strip() or None,
                )
            )
            loaded += 1
    return CsvSubscriptions(lookup, loaded, skipped)
