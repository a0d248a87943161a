"""Scoring benchmark and quality check.

(a) Performance: synthetic daily aggregates for N subscribers x D days generated straight into
    an SQLite store (not timed), then ``mmsq score`` timed end to end in a child process (read
    aggregates -> features -> verdicts -> state transitions persisted): wall time and peak RSS.
    Then a SYNTHETIC quality check against the generator's own ground truth.
(b) Quality against an external ground truth (the handset population simulator's):
    ``--truth FILE`` (CSV msisdn,expected_verdict) with ``--db URL``: precision and recall per
    verdict, and the confusion between misconfigured, capacity and unreachable.

    python bench/bench_scoring.py [--subscribers 1500000] [--days 30] [--workdir DIR] [--keep]
    python bench/bench_scoring.py --truth truth.csv --db sqlite:///var/mmsq.db [--as-of DATE]
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
from datetime import date
from pathlib import Path

import pandas as pd


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


def print_quality(label: str, predicted: pd.DataFrame, truth: pd.DataFrame) -> None:
    from mmsq.evaluation import evaluate

    ev = evaluate(predicted, truth)
    print(f"\n== QUALITY: {label} ==")
    print(
        f"matched {ev.matched:,} subscribers (truth without a verdict: {ev.unmatched_truth:,}; "
        f"verdicts without truth: {ev.unmatched_predicted:,}); accuracy {ev.accuracy:.4f}"
    )
    print(ev.per_verdict.to_string(index=False))
    print("\nconfusion (rows expected, columns predicted):")
    print(ev.confusion.to_string())


def assess(db_url: str, rules_dir: Path | None, as_of: date | None) -> pd.DataFrame:
    """Verdicts for everyone, computed in process without changing any state."""
    from mmsq.adapters.sql_recovery import SqlRecoveryStore
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.bootstrap import SystemClock
    from mmsq.devices import load_devices
    from mmsq.scoring_rules import load_scoring_rules
    from mmsq.scoring_run import ScoringService

    store = SqlStore.from_url(db_url)
    try:
        rstore = SqlRecoveryStore(store.engine, workers=2)
        if as_of is None:
            with store.engine.connect() as conn:
                last = conn.exec_driver_sql("SELECT MAX(day) FROM daily_aggregates").scalar()
            as_of = date.fromisoformat(str(last)[:10])
        service = ScoringService(
            source=rstore,
            recovery=rstore,
            blacklist=rstore,
            rules=load_scoring_rules(rules_dir),
            devices=load_devices(rules_dir),
            clock=SystemClock(),
        )
        _features, scored = service.assess(as_of)
    finally:
        store.close()
    return scored[["msisdn", "verdict"]]


def external(args: argparse.Namespace) -> int:
    truth = pd.read_csv(args.truth, dtype=str)
    missing = {"msisdn", "expected_verdict"} - set(truth.columns)
    if missing:
        print(f"{args.truth}: missing columns {sorted(missing)}", file=sys.stderr)
        return 2
    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    predicted = assess(args.db, args.rules, as_of)
    print_quality(f"external ground truth {args.truth}", predicted, truth)
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {machine()}")
    return 0


def performance(args: argparse.Namespace) -> int:
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.simulators.daily_population import (
        PopulationSpec,
        device_table,
        generate,
        load_into,
    )

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-score-"))
    work.mkdir(parents=True, exist_ok=True)
    rules_dir = work / "rules"
    rules_dir.mkdir(exist_ok=True)
    device_table().to_csv(rules_dir / "devices.csv", index=False)
    db = work / "var" / "mmsq.db"
    url = f"sqlite:///{db}"
    spec = PopulationSpec(subscribers=args.subscribers, days=args.days)
    t = time.perf_counter()
    store = SqlStore.from_url(url)
    store.upgrade()
    truth = []
    rows = 0
    for chunk in generate(spec):
        load_into(store.engine, chunk)
        truth.append(chunk.truth[["msisdn", "expected_verdict"]])
        rows += len(chunk.daily)
    store.close()
    truth_frame = pd.concat(truth, ignore_index=True)
    truth_frame.to_csv(work / "truth.csv", index=False)
    print(
        f"generated {rows:,} daily rows for {args.subscribers:,} subscribers x {args.days} days "
        f"in {time.perf_counter() - t:.0f} s (not timed)",
        file=sys.stderr,
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env.update(MMSQ_DATA_DIR=str(work / "var"), MMSQ_RULES__DIR=str(rules_dir))
    env["MMSQ_LOG__FORMAT"] = "json"
    command = [
        sys.executable,
        "-m",
        "mmsq",
        "score",
        "--json",
        "--as-of",
        spec.last_day.isoformat(),
    ]
    t = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    doc = json.loads(proc.stdout)
    print("== PERFORMANCE: mmsq score, end to end ==")
    print(f"subscribers {doc['subscribers']:,}, daily rows {rows:,}, window {args.days} days")
    print(
        f"wall time {elapsed:.1f} s (target <= 30 s), peak RSS {rss_mib:,.0f} MiB "
        f"(target <= 3072 MiB)"
    )
    print(f"verdicts {doc['by_verdict']}")
    print(f"transitions {doc['by_transition']}")
    print(
        f"timed command: MMSQ_DATA_DIR={work / 'var'} MMSQ_RULES__DIR={rules_dir} "
        f"{' '.join(command[1:])}"
    )

    predicted = assess(url, rules_dir, spec.last_day)
    print_quality(
        "SYNTHETIC self-check against the generator's own ground truth "
        "(mmsq.simulators.daily_population; not the handset population simulator)",
        predicted,
        truth_frame,
    )
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {machine()}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--truth", type=Path, help="CSV msisdn,expected_verdict (external truth)")
    ap.add_argument("--db", help="database URL to score, with --truth")
    ap.add_argument("--rules", type=Path, default=None, help="operator rules directory")
    ap.add_argument("--as-of", default=None, help="score as of this date (default: last day)")
    args = ap.parse_args()
    if args.truth is not None:
        if not args.db:
            ap.error("--truth needs --db")
        return external(args)
    return performance(args)


if __name__ == "__main__":
    raise SystemExit(main())
