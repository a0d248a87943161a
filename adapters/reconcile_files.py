"""Files the reconciliation hands over: per-class difference lists and platform repair drops.

Both are plain CSV with a header row, UTF-8, written to a temporary name and renamed, so a
reader polling the directory never sees half a file.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mmsq.ports import Clock

__all__ = ["CsvDifferenceExport", "SendListDropFolder"]


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
    pacsv.write_csv(table, str(tmp), pacsv.WriteOptions(quoting_style="needed"))
    os.replace(tmp, path)
    return path


class CsvDifferenceExport:
    """Writes ``<dir>/<name>.csv``, one file per difference class and one of platform repairs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, frame: pd.DataFrame) -> Path:
        return _write_csv(frame, self.directory / f"{name}.csv")


class SendListDropFolder:
    """Hands repairs to the content platform as a CSV file in the folder it picks batches from.

    One file per hand-over, ``repairs-<UTC time>.csv`` with the columns
    ``action,msisdn,product,class,reason``; actions are add, remove and suspend.
    """

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock

    def apply(self, repairs: pd.DataFrame) -> None:
        stamp: datetime = self._clock.now()
        name = f"repairs-{stamp:%Y%m%dT%H%M%S%f}Z.csv"
        _write_csv(
            repairs.loc[:, ["action", "msisdn", "product", "class", "reason"]],
            self.directory / name,
        )
