"""Ingest benchmark: one province-day of CDRs into the default SQLite store.

Prints records/s end to end (file -> classified, stored, aggregated), peak RSS of the ingest
process, the time of a bare pyarrow CSV read of the same file and the ratio, and the machine.

    python bench/bench_ingest.py [--subscribers 1500000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine_info import machine  # bench/machine_info.py, beside this script


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


def watch_hwm(pid: int, out: list[float]) -> None:
    """Peak RSS (VmHWM) of a running process, polled until it exits (Linux; else nothing)."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[0] = max(out[0], int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            return
        time.sleep(0.1)


def run_child(
    cmd: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Run the ingest; return it with its wall seconds, peak RSS (MiB) and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    hwm: list[float] = [0.0]
    t = time.perf_counter()
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        watcher = threading.Thread(target=watch_hwm, args=(child.pid, hwm), daemon=True)
        watcher.start()
        stdout, stderr = child.communicate()
        watcher.join()
    elapsed = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    # VmHWM is this child's own peak; ru_maxrss is the largest of all children so far (the
    # generator included), only a fallback where /proc is missing.
    return proc, elapsed, hwm[0] or usage.ru_maxrss / 1024, cpu


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

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cdr = work / "cdr.csv"
    t = time.perf_counter()
    # Generated in a child process: a child's peak RSS (ru_maxrss) counts the memory of the
    # process it was forked from, so a bench process that had built the file itself would
    # report its own size as the ingest's.
    gen = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from mmsq.simulators.cdr_generator import CdrSpec, write_cdr; "
            "print(write_cdr(Path(sys.argv[1]), "
            "CdrSpec(subscribers=int(sys.argv[2]), malformed_share=0.01)))",
            str(cdr),
            str(args.subscribers),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = int(gen.stdout)
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

    proc, elapsed, peak_rss_mib, cpu = run_child([*mmsq, "ingest", "--json", str(cdr)], env)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
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
