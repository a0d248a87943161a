"""Ports: the small interfaces through which the core talks to the world."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from mmsq.domain import QuarantinedRecord

__all__ = [
    "Clock",
    "EventStore",
    "IngestWriter",
    "RawChunk",
    "ReportReader",
    "StoredChunk",
]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


@dataclass
class RawChunk:
    """Rows read from an input, as text columns, with their line numbers (``_line``)."""

    source: str
    frame: pd.DataFrame
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    bytes_read: int = 0
    #: Columns a row must have; None means the CDR format's required columns.
    required: tuple[str, ...] | None = None


class ReportReader(Protocol):
    """Reads one input (a CDR file, say) as a stream of raw chunks."""

    source: str
    total_bytes: int | None

    def chunks(self) -> Iterator[RawChunk]: ...


@dataclass(frozen=True)
class StoredChunk:
    stored: int
    duplicates: int
    #: The event keys stored by this call (a report's outcome is told by them).
    new_keys: npt.NDArray[np.int64]


class IngestWriter(Protocol):
    """One ingest transaction: everything added is stored atomically when it ends.

    Aggregates, devices and edition counts of the stored events are folded in once, at the
    end, so a source ingested in one session costs one aggregate write, not one per chunk.
    """

    def add_events(self, events: pd.DataFrame) -> StoredChunk:
        """Store the events not stored before (``EVENT_COLUMNS``, unique ``event_key``)."""
        ...

    def add_quarantine(self, batch_id: str, records: Sequence[QuarantinedRecord]) -> None: ...

    def record_unknown_codes(
        self, counts: dict[tuple[str, str], int], seen_at: datetime
    ) -> None: ...


class EventStore(Protocol):
    """Persistence of delivery events, their daily aggregates, quarantine and unknown codes."""

    def ingest_session(self) -> AbstractContextManager[IngestWriter]:
        """A transaction for one ingest: committed when the block exits normally, rolled
        back (nothing stored, nothing counted) when it raises."""
        ...

    def recent_events(self, msisdn: str, limit: int = 20) -> list[dict[str, Any]]:
        """A subscriber's newest stored events (E.164 MSISDN), newest first."""
        ...

    def daily_aggregates(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Per (msisdn, day) counters for the days in [first_day, last_day]."""
        ...

    def edition_stats(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Per (day, edition) counters and delivered-latency histogram."""
        ...

    def ingest_events(self, events: pd.DataFrame) -> StoredChunk:
        """Store the events not stored before; fold them into the daily aggregates
        (``AGGREGATE_COUNTS`` per subscriber and local day) and the latest device per subscriber.

        Atomic: events, aggregates and devices are written in one transaction, so an
        interrupted ingest can be re-run and neither loses nor double-counts anything.
        """
        ...

    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None: ...

    def record_unknown_codes(
        self, counts: dict[tuple[str, str], int], seen_at: datetime
    ) -> None: ...

    def start_batch(self, batch_id: str, source: str, started_at: datetime) -> None: ...

    def finish_batch(
        self, batch_id: str, finished_at: datetime, summary: dict[str, object]
    ) -> None: ...

    def purge_events(self, before: datetime) -> int: ...
