"""Ground truth and complaint log of the simulated population, written to files and read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmsq.simulators.ground_truth import TRUTH_COLUMNS, write_complaints, write_ground_truth
from mmsq.simulators.population import HandsetPopulation
from mmsq.simulators.population_config import PopulationConfig


@pytest.fixture(scope="module")
def population() -> HandsetPopulation:
    pop = HandsetPopulation(PopulationConfig(subscribers=1500, seed=11, complaint_daily=0.05))
    pop.advance_to(4)
    return pop


@pytest.mark.parametrize("name", ["truth.csv", "truth.csv.gz", "truth.parquet"])
def test_ground_truth_round_trips(population: HandsetPopulation, tmp_path: Path, name: str) -> None:
    path = tmp_path / "out" / name
    rows = write_ground_truth(population, path)
    assert rows == 1500 * 5
    back = (
        pd.read_parquet(path)
        if name.endswith(".parquet")
        else pd.read_csv(path, dtype={"tac": str, "msisdn": str})
    )
    assert tuple(back.columns) == TRUTH_COLUMNS
    assert len(back) == rows
    expected = population.ground_truth()
    for column in ("msisdn", "day", "state", "expected_verdict", "tac"):
        assert back[column].astype(str).tolist() == expected[column].astype(str).tolist()
    assert back["device_known"].tolist() == expected["device_known"].tolist()


def test_ground_truth_refuses_an_unknown_format(
    population: HandsetPopulation, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="parquet"):
        write_ground_truth(population, tmp_path / "truth.xlsx")


def test_complaint_log_is_written(population: HandsetPopulation, tmp_path: Path) -> None:
    path = tmp_path / "complaints.csv"
    rows = write_complaints(population, path)
    back = pd.read_csv(path, dtype={"msisdn": str})
    assert rows == len(population.complaints()) > 0
    assert list(back.columns) == ["msisdn", "day", "reason", "days_missing"]
    assert back["msisdn"].tolist() == [c.msisdn for c in population.complaints()]
