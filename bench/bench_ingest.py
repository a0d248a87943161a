"""Ingest benchmark: one province-day of CDRs into the default SQLite store.

Prints records/s end to end (file -> classified, stored, aggregated), peak RSS of the ingest
process, the time of a bare pyarrow CSV read of the same file and the ratio, and the machine.

    python bench/bench_ingest.py [--subscribers 1500000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def bare_read(path: Path) -> float:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    t = time.perf_counter()
    with pa.input_stream(str(path), compression="detect") as fh:
        table = pacsv.read_csv(
            fh,
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _r: "skip"),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
        )
    _ = table.num_rows
    return time.perf_counter() - t


def read_timings(db: Path, cdr: Path) -> str:
    """Time the two reads later features need: one subscriber's recent events (diagnosis)
    and the day's aggregates for every subscriber (scoring)."""
    import statistics
    from datetime import date

    from mmsq.adapters.sql_store import SqlStore

    with cdr.open() as fh:
        fh.readline()
        numbers = ["+86" + fh.readline().split(",")[0].removeprefix("+86") for _ in range(50)]
    store = SqlStore.from_url(f"sqlite:///{db}")
    try:
        times = []
        for n in numbers:
            t = time.perf_counter()
            store.recent_events(n, limit=10)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        frame = store.daily_aggregates(date(2026, 11, 22), date(2026, 11, 22))
        agg = time.perf_counter() - t
    finally:
        store.close()
    return (
        f"recent_events(msisdn, 10): median {statistics.median(times) * 1000:.1f} ms "
        f"over {len(times)} subscribers; daily_aggregates for the day: {len(frame):,} rows "
        f"in {agg:.2f} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    from mmsq.simulators.cdr_generator import CdrSpec, write_cdr

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cdr = work / "cdr.csv"
    t = time.perf_counter()
    rows = write_cdr(cdr, CdrSpec(subscribers=args.subscribers, malformed_share=0.01))
    print(
        f"generated {rows:,} rows ({cdr.stat().st_size / 2**20:.0f} MiB) "
        f"in {time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env["MMSQ_DATA_DIR"] = str(work / "var")
    env["MMSQ_LOG__FORMAT"] = "json"
    mmsq = [sys.executable, "-m", "mmsq"]
    subprocess.run([*mmsq, "db", "upgrade"], env=env, check=True, capture_output=True)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [*mmsq, "ingest", "--json", str(cdr)], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_rss_mib = usage.ru_maxrss / 1024
    # ru_maxrss of children is the largest child's (the ingest); CPU is the ingest's alone.
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    summary = json.loads(proc.stdout)
    reads = read_timings(work / "var" / "mmsq.db", cdr)
    bare = min(bare_read(cdr) for _ in range(2))
    rate = rows / elapsed
    print(f"command: python bench/bench_ingest.py --subscribers {args.subscribers}")
    print(f"machine: {machine()}")
    print(
        f"rows in file: {rows:,}  stored: {summary['stored']:,}  "
        f"quarantined: {summary['quarantined']:,}"
    )
    print(f"ingest end to end: {elapsed:.1f} s = {rate:,.0f} records/s (target >= 300,000)")
    print(f"peak RSS of the ingest process: {peak_rss_mib:,.0f} MiB (target <= 2048)")
    print(
        f"bare pyarrow read of the same file: {bare:.2f} s; "
        f"ratio ingest/bare read: {elapsed / bare:.1f}x"
    )
    print(
        f"CPU time of the ingest process: {cpu:.1f} s "
        f"({cpu / elapsed:.2f} cores busy on average; the machine is shared)"
    )
    stages = summary.get("seconds", {})
    print(
        "stages (s, summed): "
        + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        + "  [read+prepare run in a worker thread alongside store+wait]"
    )
    print(reads)
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
