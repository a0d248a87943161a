"""MMSC CDR rows for whole editions sent to the simulated population (bulk, vectorised).

The nightly CDR export an MMSC would write if it had sent the edition to every subscriber:
the columns of ``cdr_generator.CDR_HEADER``, with outcomes drawn from the population exactly as
per-message ``mms_outcome`` calls would draw them. For benchmarks and scoring runs over many
simulated days.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mmsq.simulators.cdr_generator import CDR_HEADER
from mmsq.simulators.population import HandsetPopulation

__all__ = ["edition_cdr", "write_edition_cdr"]

_CST = timezone(timedelta(hours=8))


def edition_cdr(
    population: HandsetPopulation, edition: str, hour: int = 7, send_window_s: int = 3600
) -> pd.DataFrame:
    """One edition to every subscriber, sent from ``hour`` (China time) on the current day."""
    day = population.today
    start = datetime(day.year, day.month, day.day, hour, tzinfo=_CST)
    frame = population.edition_outcomes()
    n = len(frame)
    rng = np.random.default_rng([population.config.seed, population.day, hour, 0xCD])
    offsets = rng.integers(0, send_window_s, size=n)
    delivered = frame["mm_status"].to_numpy() == "Retrieved"
    # Fetched within minutes; failures end when the MM expires (a day or two later).
    latency = np.where(
        delivered, rng.integers(5, 1800, size=n), rng.integers(86_400, 172_800, size=n)
    )
    submitted = pd.to_datetime(int(start.timestamp()) + offsets, unit="s", utc=True)
    done = submitted + pd.to_timedelta(latency, unit="s")
    fmt = "%Y-%m-%dT%H:%M:%S+08:00"
    return pd.DataFrame(
        {
            "msisdn": frame["msisdn"],
            "message_id": np.strings.add(f"{edition}-", np.arange(n).astype(str)),
            "edition": edition,
            "submitted_at": submitted.tz_convert(_CST).strftime(fmt),
            "done_at": done.tz_convert(_CST).strftime(fmt),
            "status_source": frame["status_source"],
            "status_code": frame["status_code"],
            "notify_status": frame["notify_status"],
            "imei": frame["imei"],
            "region": frame["region"],
        },
        columns=list(CDR_HEADER),
    )


def write_edition_cdr(
    population: HandsetPopulation, path: Path, edition: str, hour: int = 7
) -> int:
    """Write ``edition_cdr`` as CSV (gzip if the name ends in .gz); returns the row count."""
    frame = edition_cdr(population, edition, hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1) as fh:
            frame.to_csv(fh, index=False, lineterminator="\n")
    else:
        frame.to_csv(path, index=False, lineterminator="\n")
    return len(frame)
