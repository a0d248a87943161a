"""The inbox job: ingest each complete CDR file the MMSC dropped, then file it away.

A file is ingested exactly as ``mmsq ingest`` does it (same service, same reader) and then
moved: to ``done/`` when it was read to its end (bad rows are in quarantine), to ``failed/``
with a ``.error.txt`` sidecar when the reader gave up (no header, not gzip, truncated...).
A file is moved only after its ingest returned, so a crash or a database error leaves it in
the inbox, and the next run ingests it again: idempotent ingest makes that safe. No file is
ever deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from mmsq.ingest import IngestService
from mmsq.metrics import Metrics
from mmsq.ports import ReportReader

__all__ = ["Inbox", "InboxIngestJob", "InboxScan"]

log = structlog.get_logger("mmsq.inbox")


@dataclass(frozen=True, slots=True)
class InboxScan:
    """Files ready to ingest (oldest first) and how many are still being written."""

    ready: list[Path] = field(default_factory=list)
    settling: int = 0


class Inbox(Protocol):
    """Where CDR files arrive and where they go once handled (adapters.cdr_inbox)."""

    def scan(self) -> InboxScan: ...

    def mark_done(self, path: Path) -> Path: ...

    def mark_failed(self, path: Path, reason: str) -> Path: ...


class InboxIngestJob:
    """One poll of the inbox: ingest every ready file, one ingest batch per file."""

    def __init__(
        self,
        inbox: Inbox,
        ingest: IngestService,
        reader_for: Callable[[Path], ReportReader],
        metrics: Metrics,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._inbox = inbox
        self._ingest = ingest
        self._reader_for = reader_for
        self._metrics = metrics
        self._stopping = stopping

    def __call__(self) -> dict[str, object]:
        scan = self._inbox.scan()
        self._metrics.inbox_backlog.set(len(scan.ready) + scan.settling)
        done = failed = records = stored = duplicates = quarantined = 0
        for path in scan.ready:
            if self._stopping():
                log.info("inbox.stopping", left=len(scan.ready) - done - failed)
                break
            summary = self._ingest.ingest([self._reader_for(path)])
            self._metrics.ingested(
                "cdr",
                records=summary.records,
                stored=summary.stored,
                duplicates=summary.duplicates,
                quarantined=summary.quarantined,
            )
            records += summary.records
            stored += summary.stored
            duplicates += summary.duplicates
            quarantined += summary.quarantined
            try:
                if summary.failed_sources:
                    why = "; ".join(summary.failed_sources.values())
                    reason = (
                        f"{why}\nrecords read before the error: {summary.records} "
                        f"(stored {summary.stored}, duplicates {summary.duplicates}, "
                        f"quarantined {summary.quarantined}); ingest batch {summary.batch_id}. "
                        "Fix the file and put it back in the inbox: ingest is idempotent."
                    )
                    dest = self._inbox.mark_failed(path, reason)
                    failed += 1
                    self._metrics.inbox_files.labels(outcome="failed").inc()
                    log.error("inbox.file_failed", file=path.name, moved_to=str(dest), error=why)
                else:
                    dest = self._inbox.mark_done(path)
                    done += 1
                    self._metrics.inbox_files.labels(outcome="done").inc()
                    log.info(
                        "inbox.file_done",
                        file=path.name,
                        moved_to=str(dest),
                        batch_id=summary.batch_id,
                        records=summary.records,
                        quarantined=summary.quarantined,
                    )
            except FileNotFoundError:
                # Taken away by someone else while we read it: nothing left to file.
                log.warning("inbox.file_vanished", file=path.name)
        self._metrics.inbox_backlog.set(len(scan.ready) + scan.settling - done - failed)
        return {
            "idle": not scan.ready and not scan.settling,
            "files_done": done,
            "files_failed": failed,
            "files_settling": scan.settling,
            "records": records,
            "stored": stored,
            "duplicates": duplicates,
            "quarantined": quarantined,
        }
