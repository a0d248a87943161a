"""ReportIntake: reports arriving together are stored in one ingest call, each caller told
what became of its own report (real IngestService and store, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.domain import DeliveryReport
from mmsq.ingest import IngestService, IngestSummary, ReportOutcome
from mmsq.metrics import Metrics
from mmsq.msisdn import MsisdnNormaliser
from mmsq.report_intake import IntakeOutcome, IntakeResult, ReportIntake
from mmsq.rules_loader import load_rules

T0 = datetime(2026, 11, 22, 0, 1, 2, tzinfo=UTC)
SOURCE = "mm7:DeliveryReportReq"


@dataclass
class FixedClock:
    def now(self) -> datetime:
        return T0


class GatedIngest(IngestService):
    """The first batch waits at the gate until the test opens it; batch sizes are recorded."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def ingest_report_batch(
        self, source: str, reports: Sequence[DeliveryReport]
    ) -> tuple[IngestSummary, list[ReportOutcome]]:
        self.batches.append(len(reports))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.gate.wait(10)
        return super().ingest_report_batch(source, reports)


@pytest.fixture
def rig(db_url: str) -> Iterator[tuple[ReportIntake, GatedIngest, SqlStore, Metrics]]:
    store = SqlStore.from_url(db_url)
    store.upgrade()
    ingest = GatedIngest(
        store=store,
        classifier=Classifier(load_rules(None).status_codes),
        normaliser=MsisdnNormaliser("CN"),
        clock=FixedClock(),
        timezone="Asia/Shanghai",
    )
    metrics = Metrics()
    try:
        yield ReportIntake(ingest, store, metrics, FixedClock()), ingest, store, metrics
    finally:
        store.close()


def report(
    message_id: str, msisdn: str = "+8613800138000", code: str = "Retrieved"
) -> DeliveryReport:
    return DeliveryReport(
        msisdn=msisdn,
        message_id=message_id,
        status_source="mm7",
        status_code=code,
        done_at=T0,
        edition="recovery-probe",
    )


def test_reports_waiting_behind_a_batch_are_stored_together_each_with_its_outcome(
    rig: tuple[ReportIntake, GatedIngest, SqlStore, Metrics],
) -> None:
    intake, ingest, store, metrics = rig
    ingest.gate.set()
    assert intake.accept(SOURCE, report("SEEN")).outcome is IntakeOutcome.STORED
    ingest.batches.clear()
    ingest.gate.clear()

    results: dict[str, IntakeResult] = {}

    def send(name: str, r: DeliveryReport) -> None:
        results[name] = intake.accept(SOURCE, r)

    first = threading.Thread(target=send, args=("first", report("A1")))
    first.start()
    assert ingest.entered.wait(10)  # the first report is being stored: the others queue
    later = {
        "seen_again": report("SEEN"),  # stored before: a duplicate
        "bad_number": report("B1", msisdn="12"),
        "new": report("C1", msisdn="+8613800138001", code="Expired"),
        "new_twice": report("C1", msisdn="+8613800138001", code="Expired"),
    }
    threads = [threading.Thread(target=send, args=item) for item in later.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(intake._queue) < len(later) and time.monotonic() < deadline:
        time.sleep(0.01)
    ingest.gate.set()
    for t in [first, *threads]:
        t.join(10)

    assert ingest.batches == [1, 4]
    outcome = {name: r.outcome for name, r in results.items()}
    assert outcome["first"] is IntakeOutcome.STORED
    assert outcome["seen_again"] is IntakeOutcome.DUPLICATE
    assert outcome["bad_number"] is IntakeOutcome.QUARANTINED
    # The same report twice in one batch (which of the two comes first is the scheduler's):
    # stored once, the other a duplicate.
    twins = [results["new"], results["new_twice"]]
    assert sorted(r.outcome.value for r in twins) == ["duplicate", "stored"]
    assert next(r for r in twins if r.outcome is IntakeOutcome.STORED).cause == "not_fetched"
    assert results["seen_again"].batch_id == results["new"].batch_id != results["first"].batch_id
    assert store.event_count() == 3
    (quarantined,) = store.quarantine_rows()
    assert "MSISDN" in quarantined["reason"]
    get = metrics.registry.get_sample_value
    assert get("mmsq_delivery_reports_received_total", {"outcome": "stored"}) == 3
    assert get("mmsq_delivery_reports_received_total", {"outcome": "duplicate"}) == 2
    assert get("mmsq_delivery_reports_received_total", {"outcome": "quarantined"}) == 1


def test_a_failed_batch_raises_to_its_caller_and_the_next_report_goes_through(
    rig: tuple[ReportIntake, GatedIngest, SqlStore, Metrics],
) -> None:
    intake, ingest, store, _ = rig
    ingest.gate.set()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE event_segments RENAME TO event_segments_away")
    with pytest.raises(Exception, match="event_segments"):
        intake.accept(SOURCE, report("X1"))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE event_segments_away RENAME TO event_segments")
    assert intake.accept(SOURCE, report("X1")).outcome is IntakeOutcome.STORED
    assert store.event_count() == 1
