"""Housekeeping jobs: the retention purge of raw delivery events (aggregates are kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mmsq.ingest import retention_cutoff
from mmsq.metrics import Metrics
from mmsq.ports import Clock

__all__ = ["EventPurger", "RetentionPurgeJob"]


class EventPurger(Protocol):
    def purge_events(self, before: datetime) -> int: ...


class RetentionPurgeJob:
    """Deletes raw events submitted more than ``retention_days`` ago, as ``mmsq db purge`` does."""

    def __init__(
        self, store: EventPurger, clock: Clock, retention_days: int, metrics: Metrics
    ) -> None:
        self._store = store
        self._clock = clock
        self._days = retention_days
        self._metrics = metrics

    def __call__(self) -> dict[str, object]:
        cutoff = retention_cutoff(self._clock.now(), self._days)
        deleted = self._store.purge_events(cutoff)
        self._metrics.retention_purged.inc(deleted)
        return {"deleted": deleted, "cutoff": cutoff.isoformat(), "retention_days": self._days}
