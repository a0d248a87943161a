"""Single delivery reports pushed to mmsq (MM7 DeliveryReportReq) into the ingest path.

The protocol edge (the HTTP endpoint) parses the request and calls ``accept`` with a report,
or ``reject`` with the reason it could not be read; either way the outcome is stored (the
event, idempotently, or the raw request in quarantine) and counted.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import uuid4

import structlog

from mmsq.domain import DeliveryReport, QuarantinedRecord
from mmsq.ingest import IngestService
from mmsq.metrics import Metrics
from mmsq.ports import Clock

__all__ = ["IntakeOutcome", "IntakeResult", "QuarantineSink", "ReportIntake"]

log = structlog.get_logger("mmsq.report_intake")

_RAW_LIMIT = 2000


class QuarantineSink(Protocol):
    def add_quarantine(self, batch_id: str, records: list[QuarantinedRecord]) -> None: ...


class IntakeOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"  # readable but refused by ingest (e.g. an invalid MSISDN)
    MALFORMED = "malformed"  # not readable as a report at all


@dataclass(frozen=True, slots=True)
class IntakeResult:
    outcome: IntakeOutcome
    batch_id: str
    cause: str | None = None


@dataclass
class _Waiting:
    source: str
    report: DeliveryReport
    done: bool = False
    result: IntakeResult | None = None
    error: BaseException | None = None


class ReportIntake:
    """Feeds pushed reports to the ingest path; quarantines what cannot be read.

    Reports arriving together are stored together: while one thread stores a batch, the
    reports that arrive meanwhile wait, and the first of them then stores all of them in one
    ingest call (at most ``max_batch``). A lone report is stored at once (no added delay); under
    load the cost of an ingest call (mostly fixed) is shared. Each caller gets its own
    report's outcome; if the batch fails, every caller in it gets the error (the MMSC retries).
    """

    def __init__(
        self,
        ingest: IngestService,
        quarantine: QuarantineSink,
        metrics: Metrics,
        clock: Clock,
        max_batch: int = 256,
    ) -> None:
        self._ingest = ingest
        self._quarantine = quarantine
        self._metrics = metrics
        self._clock = clock
        self._max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Waiting] = []
        self._busy = False

    def accept(self, source: str, report: DeliveryReport) -> IntakeResult:
        """Classify and store one report; a report without a date is dated on arrival."""
        if report.done_at is None and report.submitted_at is None:
            report = dataclasses.replace(report, done_at=self._clock.now())
        me = _Waiting(source, report)
        with self._cv:
            self._queue.append(me)
            while self._busy and not me.done:
                self._cv.wait()
            if not me.done:
                self._busy = True
                others = [w for w in self._queue if w is not me and w.source == source]
                batch = [me, *others[: self._max_batch - 1]]
                taken = {id(w) for w in batch}
                self._queue = [w for w in self._queue if id(w) not in taken]
        if not me.done:
            try:
                self._store(source, batch)
            except BaseException as exc:
                for w in batch:
                    w.error = exc
                raise
            finally:
                with self._cv:
                    for w in batch:
                        w.done = True
                    self._busy = False
                    self._cv.notify_all()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _store(self, source: str, batch: list[_Waiting]) -> None:
        summary, outcomes = self._ingest.ingest_report_batch(source, [w.report for w in batch])
        self._metrics.ingested(
            "mm7",
            records=summary.records,
            stored=summary.stored,
            duplicates=summary.duplicates,
            quarantined=summary.quarantined,
        )
        for w, done in zip(batch, outcomes, strict=True):
            outcome = IntakeOutcome(done.status)
            self._metrics.delivery_reports.labels(outcome=outcome.value).inc()
            # One line per report is too many at production volume: DEBUG; metrics count them.
            log.debug(
                "report.received",
                source=source,
                outcome=outcome.value,
                cause=done.cause,
                message_id=w.report.message_id,
                msisdn=w.report.msisdn,
                batch_id=summary.batch_id,
                batch=len(batch),
            )
            w.result = IntakeResult(outcome, summary.batch_id, done.cause)

    def reject(self, source: str, reason: str, raw: bytes) -> IntakeResult:
        """Quarantine a request that is not a readable report, with the reason."""
        batch_id = uuid4().hex
        text = raw[:_RAW_LIMIT].decode("utf-8", "replace")
        self._quarantine.add_quarantine(batch_id, [QuarantinedRecord(source, 1, reason, text)])
        self._metrics.delivery_reports.labels(outcome=IntakeOutcome.MALFORMED.value).inc()
        self._metrics.ingest_quarantined.labels(source="mm7").inc()
        log.warning("report.malformed", source=source, reason=reason, batch_id=batch_id)
        return IntakeResult(IntakeOutcome.MALFORMED, batch_id)

    def failed(self) -> None:
        """Count a report that could not be handled for a transient reason (peer will retry)."""
        self._metrics.delivery_reports.labels(outcome="error").inc()
