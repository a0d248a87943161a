"""Ports of the subscription store and of the reconciliation's outputs.

Bulk data crosses these ports as pandas frames so that millions of rows never become Python
objects one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from mmsq.domain import QuarantinedRecord
from mmsq.subscriptions import (
    EventResult,
    Source,
    Subscription,
    SubscriptionEvent,
    SubscriptionState,
    Transition,
)

__all__ = [
    "SNAPSHOT_COLUMNS",
    "SOURCE_STATE_COLUMNS",
    "DifferenceExport",
    "ReconcileRun",
    "SendList",
    "SnapshotRecord",
    "SubscriptionStore",
]

#: Columns of a validated snapshot chunk handed to the store.
SNAPSHOT_COLUMNS: tuple[str, ...] = ("msisdn", "product", "status", "since_ts", "channel")
#: Columns of the frame the store returns for a reconciliation.
SOURCE_STATE_COLUMNS: tuple[str, ...] = ("msisdn_num", "product", *(s.value for s in Source))


@dataclass(frozen=True)
class SnapshotRecord:
    """One imported snapshot file: which source, for which date, how many rows."""

    batch_id: str
    source: Source
    as_of: date
    file: str
    rows: int
    quarantined: int
    imported_at: datetime


@dataclass(frozen=True)
class ReconcileRun:
    """The counts of one reconciliation run, kept for the weekly report's trend."""

    run_id: str
    as_of: date
    started_at: datetime
    finished_at: datetime
    compared: int
    counts: dict[str, int | None]
    stale: list[str] = field(default_factory=list)
    snapshots: dict[str, str | None] = field(default_factory=dict)
    repairs_proposed: int = 0
    repairs_applied: int = 0


class SubscriptionStore(Protocol):
    """Persistence of subscriptions, their events, snapshots, repairs and reconcile runs."""

    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None: ...

    def upsert_snapshot(
        self, source: Source, as_of: date, snapshot_ts: int, rows: pd.DataFrame
    ) -> int:
        """Record ``rows`` (``SNAPSHOT_COLUMNS``, one per MSISDN and product) as what ``source``
        said on ``as_of``. A row never goes back to an older snapshot of the same source. For
        the reference source the rows also set mmsq's own status, unless a change newer than
        ``snapshot_ts`` (UTC epoch seconds) is already stored. Returns the rows written."""
        ...

    def record_snapshot(self, record: SnapshotRecord) -> None: ...

    def latest_snapshots(self) -> dict[Source, date]:
        """The newest snapshot date imported for each source (sources never imported absent)."""
        ...

    def get(self, msisdn: str, product: str) -> Subscription | None: ...

    def apply_event(
        self,
        event: SubscriptionEvent,
        event_ts: int,
        received_at: datetime,
        decide: Callable[[SubscriptionState | None], Transition],
    ) -> EventResult:
        """Store the event (append-only) and apply ``decide``'s transition, atomically.

        An event id seen before changes nothing and answers ``duplicate``."""
        ...

    def source_states(self, present: Mapping[Source, date | None]) -> pd.DataFrame:
        """Every subscription some source holds, as ``SOURCE_STATE_COLUMNS``.

        ``msisdn_num`` is the E.164 number's digits as int64 (cheap to join on); ``product`` is
        categorical; each source column is the ``STATUS_CODES`` code of the status in that
        source's snapshot of ``present[source]``, 0 when the row is not in it (or the source is
        given as None).
        """
        ...

    def applied_repairs(self, platform_as_of: date) -> pd.DataFrame:
        """Repairs applied against the platform snapshot of ``platform_as_of``
        (``msisdn``, ``product``, ``action``), so a re-run does not apply them twice."""
        ...

    def add_repairs(
        self, run_id: str, at: datetime, platform_as_of: date, repairs: pd.DataFrame
    ) -> None:
        """Append applied repairs (``msisdn``, ``product``, ``action``, ``class``, ``reason``)
        to the audit table."""
        ...

    def record_reconcile_run(self, run: ReconcileRun) -> None:
        """Keep the run's counts; a later run for the same date replaces the earlier one."""
        ...

    def reconcile_runs(self, limit: int = 30) -> list[ReconcileRun]:
        """The newest runs first."""
        ...


class SendList(Protocol):
    """The content platform's send list, as far as repairs are concerned."""

    def apply(self, repairs: pd.DataFrame) -> None:
        """Hand over repairs (``action`` add/remove/suspend, ``msisdn``, ``product``, ...)."""
        ...


class DifferenceExport(Protocol):
    """Where the per-class difference lists and the repair list go for the teams who fix them."""

    def write(self, name: str, frame: pd.DataFrame) -> Path: ...
