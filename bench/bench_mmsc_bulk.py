"""MMSC simulator benchmark: bulk newspaper editions in-process, then the nightly CDR exports.

Runs ``MmscSimulator.run_bulk_edition`` for every subscriber, two editions a day, over a number
of simulated days, with an outcome table that varies by subscriber, then exports each day's CDR.
Prints the overhead per record of the bulk path and of the export, and the machine.

    python bench/bench_mmsc_bulk.py [--subscribers 20000] [--days 14] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine_info import machine  # bench/machine_info.py, beside this script


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
    from mmsq.simulators.outcomes import FixedOutcomes, MmsOutcome

    msisdns = [f"138{i:08d}" for i in range(args.subscribers)]
    variants = [
        MmsOutcome("Expired", "mm7", "Expired", "DELIVRD", 3_600.0),
        MmsOutcome("Rejected", "cmpp", "MK:0017", "MK:0017", 60.0),
        MmsOutcome("Expired", "cmpp", "MK:0024", "MK:0024", 600.0),
    ]
    outcomes = FixedOutcomes(
        mms={m: variants[i % 3] for i, m in enumerate(msisdns) if i % 5 == 0},
        imeis={m: f"35332510{i:07d}" for i, m in enumerate(msisdns)},
        regions=dict.fromkeys(msisdns, "Hefei"),
    )
    first = datetime(2026, 11, 9, tzinfo=UTC)
    now = [first]
    sim = MmscSimulator(
        outcomes,
        MmscConfig(seed=1, faults=MmscFaults(malformed_cdr_share=0.01)),
        clock=lambda: now[0],
    )
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-mmsc-"))

    bulk_s = export_s = 0.0
    records = rows = 0
    for d in range(args.days):
        day0 = first + timedelta(days=d)  # 08:00 in Shanghai
        t = time.perf_counter()
        records += sim.run_bulk_edition(f"am-{d}", msisdns, day0 - timedelta(hours=1))
        records += sim.run_bulk_edition(f"pm-{d}", msisdns, day0 + timedelta(hours=9))
        bulk_s += time.perf_counter() - t
        now[0] = day0 + timedelta(hours=18)  # the nightly export at 02:00
        t = time.perf_counter()
        export = sim.export_cdr(
            (day0 + timedelta(hours=8)).date(), work / f"cdr-{d:02d}.csv.gz", gzip=True
        )
        export_s += time.perf_counter() - t
        rows += export.rows

    print(
        f"command: python bench/bench_mmsc_bulk.py --subscribers {args.subscribers} "
        f"--days {args.days}"
    )
    print(f"machine: {machine()}")
    print(
        f"bulk:   {records:,} records in {bulk_s:.2f} s = "
        f"{bulk_s / records * 1e6:.2f} us/record ({records / bulk_s:,.0f} records/s)"
    )
    print(
        f"export: {rows:,} CDR rows (gzip) in {export_s:.2f} s = {export_s / rows * 1e6:.2f} us/row"
    )
    print(f"total:  {bulk_s + export_s:.2f} s for {args.days} simulated days")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
