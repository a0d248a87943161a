"""Handset population benchmark: build N subscribers, run days, draw editions, write truth.

Prints the time to build the population, to advance one simulated day, to draw one edition's
outcomes for everyone (vectorised), the cost of one per-message outcome call, the time to write
the ground truth, the peak RSS, the command and the machine.

    python bench/bench_population.py [--subscribers 1500000] [--days 30] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine  # bench/machine_info.py, beside this script


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    from mmsq.simulators.ground_truth import write_ground_truth
    from mmsq.simulators.population import HandsetPopulation
    from mmsq.simulators.population_config import PopulationConfig

    t = time.perf_counter()
    pop = HandsetPopulation(PopulationConfig(subscribers=args.subscribers, seed=7))
    build = time.perf_counter() - t

    numbers = pop.msisdns()[:20_000].tolist()
    t = time.perf_counter()
    for m in numbers:
        pop.mms_outcome(m)
    per_mms = (time.perf_counter() - t) / len(numbers)

    advance = edition = 0.0
    for _ in range(args.days):
        t = time.perf_counter()
        pop.edition_outcomes()
        edition += time.perf_counter() - t
        t = time.perf_counter()
        pop.advance_day()
        advance += time.perf_counter() - t

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-"))
    t = time.perf_counter()
    rows = write_ground_truth(pop, work / "truth.parquet")
    truth = time.perf_counter() - t
    size = (work / "truth.parquet").stat().st_size / 2**20
    if args.workdir is None:
        shutil.rmtree(work)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n, d = args.subscribers, args.days
    print(f"subscribers            {n:,}")
    print(f"build                  {build:.2f} s")
    print(f"advance one day        {advance / d:.3f} s (mean of {d})")
    print(f"one edition (vector)   {edition / d:.2f} s (mean of {d}, {n / (edition / d):,.0f}/s)")
    print(f"mms_outcome per call   {per_mms * 1e6:.1f} us")
    print(f"ground truth           {rows:,} rows, {size:.0f} MiB parquet, {truth:.1f} s")
    calls = len(pop.complaints())
    print(f"complaints             {calls:,} ({calls / n * 1e4:.1f} per 10k subscribers)")
    print(f"peak RSS               {rss:,.0f} MiB")
    print(f"command                python {' '.join(sys.argv)}")
    print(f"machine                {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
