"""The MMSC simulator's nightly CDR export goes through mmsq's ingest (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules
from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

DAY = date(2026, 11, 22)
AM = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)  # 07:00 in Shanghai
PM = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
NIGHT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # 02:00 the next day: export time

# 40 subscribers in five handset states; each gets the morning and the evening edition.
STATES: dict[str, tuple[MmsOutcome, str]] = {
    "healthy": (MmsOutcome("Retrieved", "mm7", "Retrieved", "DELIVRD", 40.0), "delivered"),
    "misconfigured": (MmsOutcome("Expired", "mm7", "Expired", "DELIVRD", 3_600.0), "not_fetched"),
    "memory_full": (
        MmsOutcome("Rejected", "cmpp", "MK:0017", "MK:0017", 120.0),
        "terminal_capacity",
    ),
    "powered_off": (MmsOutcome("Expired", "cmpp", "MK:0024", "MK:0024", 600.0), "unreachable"),
    # an expiry two days out: not done by the export, so the row is pending
    "slow": (MmsOutcome("Expired", "mm7", "Expired", "DELIVRD", 172_800.0), "pending"),
}


class FixedClock:
    def now(self) -> datetime:
        return NIGHT + timedelta(hours=1)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(db_url)
    s.upgrade()
    yield s
    s.close()


def population() -> tuple[FixedOutcomes, list[str], dict[str, str]]:
    outcomes = FixedOutcomes()
    msisdns: list[str] = []
    cause_of: dict[str, str] = {}
    for i in range(40):
        state = list(STATES)[i % len(STATES)]
        msisdn = f"1380013{i:04d}" if i % 2 else f"+861390013{i:04d}"
        outcome, cause = STATES[state]
        outcomes.mms[msisdn] = outcome
        outcomes.imeis[msisdn] = f"3533251{i:07d}0"
        outcomes.regions[msisdn] = "Hefei" if i < 20 else "Wuhu"
        msisdns.append(msisdn)
        cause_of[msisdn] = cause
    return outcomes, msisdns, cause_of


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "gzip"])
def test_cdr_export_round_trips_through_ingest_with_counts_by_cause(
    tmp_path: Path, store: SqlStore, gz: bool
) -> None:
    outcomes, msisdns, cause_of = population()
    sim = MmscSimulator(outcomes, MmscConfig(bulk_rate_per_s=10.0), clock=lambda: NIGHT)
    sim.run_bulk_edition("ah-daily-20261122-am", msisdns, AM)
    sim.run_bulk_edition("ah-daily-20261122-pm", msisdns, PM)
    path = tmp_path / ("cdr.csv.gz" if gz else "cdr.csv")
    export = sim.export_cdr(DAY, path, gzip=gz)
    assert (export.rows, export.pending, export.malformed) == (80, 16, 0)

    rules = load_rules()
    service = IngestService(
        store, Classifier(rules.status_codes), MsisdnNormaliser("CN"), FixedClock(), "Asia/Shanghai"
    )
    summary = service.ingest([CdrFileReader(path)])

    expected: dict[str, int] = {}
    for msisdn in msisdns:
        expected[cause_of[msisdn]] = expected.get(cause_of[msisdn], 0) + 2
    assert dict(summary.by_cause) == expected
    assert (summary.records, summary.stored, summary.quarantined) == (80, 80, 0)
    assert summary.unknown_codes == {}
    assert store.event_count() == 80
    daily = {r["msisdn"]: r for r in store.daily_rows()}
    healthy = daily["+8613900130000"]
    assert (healthy["attempts"], healthy["delivered"], str(healthy["day"])) == (2, 2, "2026-11-22")
    # a misconfigured handset: the notification SMS arrived, the MM was never fetched
    assert daily["+8613800130001"]["notified_not_fetched"] == 2


def test_malformed_rows_in_the_export_land_in_quarantine(tmp_path: Path, store: SqlStore) -> None:
    outcomes, msisdns, _ = population()
    sim = MmscSimulator(
        outcomes,
        MmscConfig(seed=3, faults=MmscFaults(malformed_cdr_share=0.1)),
        clock=lambda: NIGHT,
    )
    sim.run_bulk_edition("am", msisdns, AM)
    sim.run_bulk_edition("pm", msisdns, PM)
    export = sim.export_cdr(DAY, tmp_path / "cdr.csv")
    rules = load_rules()
    service = IngestService(
        store, Classifier(rules.status_codes), MsisdnNormaliser("CN"), FixedClock(), "Asia/Shanghai"
    )
    summary = service.ingest([CdrFileReader(tmp_path / "cdr.csv")])
    assert export.malformed == 8
    assert (summary.records, summary.quarantined) == (72, 8)
    reasons = {r["reason"] for r in store.quarantine_rows(summary.batch_id)}
    assert reasons <= {
        "missing required field message_id",
        "unparsable submitted_at (ISO 8601 expected)",
        "invalid MSISDN",
        "wrong column count: 5 (header has 10)",
    }
