"""Read benchmark: a window of daily aggregates for every subscriber, as scoring reads it.

Writes synthetic per-subscriber daily counts for ``--days`` days into a fresh SQLite store
(through the same block writer ingest uses), then times ``SqlStore.daily_aggregates`` over the
whole window and prints rows/s, peak RSS, the command and the machine. Target: 1.5M
subscribers x 30 days in <= 30 s.

    python bench/bench_read_aggregates.py [--subscribers 1500000] [--days 30]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import machine

from mmsq.adapters.sql_ingest_session import SqlIngestSession
from mmsq.adapters.sql_store import SqlStore
from mmsq.aggregates import COUNT_COLUMNS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmsq-bench-read-"))
    store = SqlStore.from_url(f"sqlite:///{work / 'mmsq.db'}")
    try:
        store.upgrade()
        rng = np.random.default_rng(7)
        msisdn = np.sort(8613800000000 + rng.permutation(args.subscribers * 3)[: args.subscribers])
        first = date(2026, 11, 1)
        t = time.perf_counter()
        for d in range(args.days):
            day = first + timedelta(days=d)
            # Two issues a day per subscriber, each with one cause (78% delivered).
            values = np.zeros((args.subscribers, len(COUNT_COLUMNS)), dtype=np.int32)
            values[:, 0] = 2
            values[:, 1] = 2
            for _ in range(2):
                cause = np.where(
                    rng.random(args.subscribers) < 0.78,
                    0,
                    rng.integers(1, len(COUNT_COLUMNS) - 4, args.subscribers),
                )
                values[np.arange(args.subscribers), 4 + cause] += 1
            values[:, 2] = values[:, 4]
            counts = pd.DataFrame(values, columns=list(COUNT_COLUMNS))
            counts.insert(0, "day", np.int32((day - date(1970, 1, 1)).days))
            counts.insert(0, "msisdn", msisdn)
            counts["last_ts"] = np.int64(1_700_000_000)
            with store.engine.begin() as conn:
                # The block writer an ingest session uses at its end (benchmark only).
                SqlIngestSession(conn)._merge_aggregates(counts)
        print(f"wrote {args.days} days in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        t = time.perf_counter()
        frame = store.daily_aggregates(first, first + timedelta(days=args.days - 1))
        elapsed = time.perf_counter() - t
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"command: python bench/bench_read_aggregates.py --subscribers {args.subscribers} "
        f"--days {args.days}"
    )
    print(f"machine: {machine()}")
    print(
        f"daily_aggregates: {len(frame):,} rows x {frame.shape[1]} columns in {elapsed:.1f} s "
        f"= {len(frame) / elapsed:,.0f} rows/s (target: 45,000,000 rows in <= 30 s)"
    )
    print(f"peak RSS of the process: {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
