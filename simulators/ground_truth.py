"""Write the population's ground truth (and complaint log) to CSV or Parquet, a day at a time.

Scoring is evaluated against this file: one row per subscriber per simulated day with the state
the subscriber started the day in and the verdict that state deserves. Written day by day so a
month of 1.5 million subscribers never sits in memory as one frame.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmsq.simulators.population import HandsetPopulation

__all__ = ["TRUTH_COLUMNS", "write_complaints", "write_ground_truth"]

TRUTH_COLUMNS = (
    "msisdn",
    "day",
    "state",
    "expected_verdict",
    "tac",
    "device_known",
    "brand",
    "model",
    "region",
)


def write_ground_truth(population: HandsetPopulation, path: Path) -> int:
    """Write every recorded day to ``path`` (.parquet, .csv or .csv.gz); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    rows = 0
    if name.endswith(".parquet"):
        writer: pq.ParquetWriter | None = None
        # Plain strings: smaller and quicker than a 1.5M-entry dictionary in every row group.
        msisdns = pa.array(population.msisdns(), type=pa.string())
        try:
            for day in population.days:
                frame = population.ground_truth_day(day)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                table = table.set_column(0, "msisdn", msisdns)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema, compression="zstd")
                writer.write_table(table)
                rows += len(frame)
        finally:
            if writer is not None:
                writer.close()
        return rows
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise ValueError(f"{path}: ground truth is written as .parquet, .csv or .csv.gz")
    with (
        gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1)
        if name.endswith(".gz")
        else path.open("w", encoding="utf-8", newline="")
    ) as fh:
        for n, day in enumerate(population.days):
            frame = population.ground_truth_day(day)
            frame.to_csv(fh, header=n == 0, index=False, lineterminator="\n")
            rows += len(frame)
    return rows


def write_complaints(population: HandsetPopulation, path: Path) -> int:
    """Write the complaint log (msisdn, day, reason, days_missing) as CSV; returns the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = population.complaints_frame()
    frame.to_csv(path, index=False, lineterminator="\n")
    return len(frame)
