"""CDRs of an edition sent to the simulated population go through mmsq's own ingest cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.adapters.sql_store import SqlStore
from mmsq.classify import Classifier
from mmsq.ingest import IngestService
from mmsq.msisdn import MsisdnNormaliser
from mmsq.rules_loader import load_rules
from mmsq.simulators.cdr_generator import CDR_HEADER
from mmsq.simulators.population import HandsetPopulation
from mmsq.simulators.population_cdr import edition_cdr, write_edition_cdr
from mmsq.simulators.population_config import PopulationConfig


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.from_url(f"sqlite:///{tmp_path / 'mmsq.db'}")
    s.upgrade()
    yield s
    s.close()


def test_edition_cdr_has_the_cdr_columns_and_one_row_per_subscriber() -> None:
    pop = HandsetPopulation(PopulationConfig(subscribers=300, seed=4))
    frame = edition_cdr(pop, "ah-daily-20261101-am")
    assert tuple(frame.columns) == CDR_HEADER
    assert len(frame) == 300
    assert frame["message_id"].is_unique
    assert frame["submitted_at"].str.startswith("2026-11-01T07:").all()


def test_population_cdr_ingests_without_quarantine_and_with_the_intended_causes(
    tmp_path: Path, store: SqlStore
) -> None:
    pop = HandsetPopulation(PopulationConfig(subscribers=4000, seed=21))
    truth = pop.ground_truth_day(0).set_index("msisdn")
    path = tmp_path / "cdr.csv.gz"
    assert write_edition_cdr(pop, path, "ah-daily-20261101-am") == 4000

    service = IngestService(
        store,
        Classifier(load_rules().status_codes),
        MsisdnNormaliser("CN"),
        FixedClock(),
        "Asia/Shanghai",
    )
    summary = service.ingest([CdrFileReader(path)])
    assert summary.quarantined == 0
    assert summary.records == 4000
    unknown = sum(summary.unknown_codes.values())
    assert 0 < unknown < 4000 * 0.03

    healthy = (truth["state"] == "healthy").mean()
    assert summary.by_cause["delivered"] / 4000 == pytest.approx(healthy * 0.965, abs=0.03)
    for cause in ("not_fetched", "terminal_capacity", "unreachable", "subscriber_invalid"):
        assert summary.by_cause[cause] > 0

    frame = pd.read_csv(path, dtype=str)
    cancelled = frame["msisdn"].map(truth["state"]) == "number_cancelled"
    assert cancelled.any()
    codes = frame.loc[cancelled, ["status_source", "status_code"]].itertuples(index=False)
    classifier = Classifier(load_rules().status_codes)
    causes = {classifier.lookup(ns, code).cause.value for ns, code in codes}
    assert causes <= {"subscriber_invalid", "unknown"}
