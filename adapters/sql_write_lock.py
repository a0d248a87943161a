"""One writer at a time on SQLite, for processes that ingest from several threads (the daemon).

SQLite allows one write transaction at a time. The store's write transactions start by reading
(the duplicate check) and then write; when another connection committed in between, SQLite
answers "database is locked" at once instead of waiting for the busy timeout. Serialising the
store's write methods in the process avoids that: the MM7 endpoint's threads and the inbox job
take turns, chunk by chunk. PostgreSQL needs none of this.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pandas as pd

from mmsq.adapters.sql_ingest_session import SqlIngestSession
from mmsq.adapters.sql_store import SqlStore
from mmsq.domain import QuarantinedRecord
from mmsq.ports import StoredChunk

__all__ = ["SerialisedWrites"]


class SerialisedWrites:
    """The EventStore port of a SqlStore, each write method run under one process-wide lock."""

    def __init__(self, store: SqlStore, lock: threading.Lock | None = None) -> None:
        self.store = store
        self._lock = lock or threading.Lock()

    def ingest_events(self, events: pd.DataFrame) -> StoredChunk:
        with self._lock:
            result: StoredChunk = self.store.ingest_events(events)
        return result

    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None:
        with self._lock:
            self.store.add_quarantine(batch_id, records)

    def record_unknown_codes(self, counts: dict[tuple[str, str], int], seen_at: datetime) -> None:
        with self._lock:
            self.store.record_unknown_codes(counts, seen_at)

    def start_batch(self, batch_id: str, source: str, started_at: datetime) -> None:
        with self._lock:
            self.store.start_batch(batch_id, source, started_at)

    def finish_batch(
        self, batch_id: str, finished_at: datetime, summary: dict[str, object]
    ) -> None:
        with self._lock:
            self.store.finish_batch(batch_id, finished_at, summary)

    def purge_events(self, before: datetime) -> int:
        with self._lock:
            return int(self.store.purge_events(before))

    @contextmanager
    def ingest_session(self) -> Iterator[SqlIngestSession]:
        """One source's ingest transaction, holding the lock until it commits."""
        with self._lock, self.store.ingest_session() as session:
            yield session

    # Reads need no turn.

    def recent_events(self, msisdn: str, limit: int = 20) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.store.recent_events(msisdn, limit)
        return rows

    def daily_aggregates(self, first_day: date, last_day: date) -> pd.DataFrame:
        frame: pd.DataFrame = self.store.daily_aggregates(first_day, last_day)
        return frame

    def edition_stats(self, first_day: date, last_day: date) -> pd.DataFrame:
        frame: pd.DataFrame = self.store.edition_stats(first_day, last_day)
        return frame
