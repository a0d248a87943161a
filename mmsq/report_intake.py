"""Single delivery reports pushed to mmsq (MM7 DeliveryReportReq) into the ingest path.

The protocol edge (the HTTP endpoint) parses the request and calls ``accept`` with a report,
or ``reject`` with the reason it could not be read; either way the outcome is stored (the
event, idempotently, or the raw request in quarantine) and counted.
"""

from __future__ import annotations

import dataclasses
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


class ReportIntake:
    """Feeds pushed reports to IngestService.ingest_reports; quarantines what cannot be read."""

    def __init__(
        self, ingest: IngestService, quarantine: QuarantineSink, metrics: Metrics, clock: Clock
    ) -> None:
        self._ingest = ingest
        self._quarantine = quarantine
        self._metrics = metrics
        self._clock = clock

    def accept(self, source: str, report: DeliveryReport) -> IntakeResult:
        """Classify and store one report; a report without a date is dated on arrival."""
        if report.done_at is None and report.submitted_at is None:
            report = dataclasses.replace(report, done_at=self._clock.now())
        summary = self._ingest.ingest_reports(source, [report])
        self._metrics.ingested(
            "mm7",
            records=summary.records,
            stored=summary.stored,
            duplicates=summary.duplicates,
            quarantined=summary.quarantined,
        )
        if summary.quarantined:
            outcome = IntakeOutcome.QUARANTINED
        elif summary.stored:
            outcome = IntakeOutcome.STORED
        else:
            outcome = IntakeOutcome.DUPLICATE
        self._metrics.delivery_reports.labels(outcome=outcome.value).inc()
        cause = next(iter(summary.by_cause), None)
        # One line per report is too many at production volume: DEBUG; the metrics count them.
        log.debug(
            "report.received",
            source=source,
            outcome=outcome.value,
            cause=cause,
            message_id=report.message_id,
            msisdn=report.msisdn,
            batch_id=summary.batch_id,
        )
        return IntakeResult(outcome, summary.batch_id, cause)

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
