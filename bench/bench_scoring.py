"""Scoring benchmark and quality check.

(a) Performance (default): synthetic daily aggregates for N subscribers x D days written
    straight into an SQLite store as the store's columnar blocks (not timed), then
    ``mmsq score`` timed end to end in a child process (read aggregates -> features -> verdicts
    -> state transitions persisted): wall time, CPU seconds (user + system) and peak RSS
    (VmHWM), with the wall seconds of each stage. Then a SYNTHETIC self-check against the
    generator's own ground truth.

    python bench/bench_scoring.py [--subscribers 1500000] [--days 30] [--workdir DIR] [--reuse]

(b) Quality on the handset population simulator (``--population``): per seed, N simulated
    subscribers for D days, each day two newspaper editions through the MMSC simulator's bulk
    path, the nightly CDR export ingested by ``IngestService`` into a fresh SQLite store (as
    ``mmsq demo`` does); then scoring as of the last day against the population's ground truth
    of that day: precision and recall per verdict and the confusion between misconfigured,
    capacity and unreachable, over the subscribers whose state held for the last
    ``--settle-days`` days (and, for reference, over everyone).

    python bench/bench_scoring.py --population 50000 --days 30 --seeds 101,102,103 \\
        [--workdir DIR] [--reuse] [--rules DIR]

(c) Quality against an external ground truth: ``--truth FILE`` (CSV msisdn,expected_verdict)
    with ``--db URL --as-of DATE``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import machine, run_child

TZ = "Asia/Shanghai"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def print_quality(label: str, predicted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
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
    return ev.as_dict()


def scoring_service(db_url: str, rules_dir: Path | None) -> tuple[Any, Any]:
    """A ScoringService on ``db_url`` (the store is returned to be closed)."""
    from mmsq.adapters.sql_recovery import SqlRecoveryStore
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.bootstrap import SystemClock
    from mmsq.devices import load_devices
    from mmsq.scoring_rules import load_scoring_rules
    from mmsq.scoring_run import ScoringService

    store = SqlStore.from_url(db_url)
    rstore = SqlRecoveryStore(store.engine)
    service = ScoringService(
        source=rstore,
        recovery=rstore,
        blacklist=rstore,
        rules=load_scoring_rules(rules_dir),
        devices=load_devices(rules_dir),
        clock=SystemClock(),
        timezone=TZ,
    )
    return service, store


def assess(db_url: str, rules_dir: Path | None, as_of: date) -> pd.DataFrame:
    """Verdicts for everyone, computed in process without changing any state."""
    service, store = scoring_service(db_url, rules_dir)
    try:
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
    predicted = assess(args.db, args.rules, date.fromisoformat(args.as_of))
    print_quality(f"external ground truth {args.truth}", predicted, truth)
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {machine()}")
    return 0


# -- (a) performance -------------------------------------------------------------------------


def generate_store(url: str, subscribers: int, days: int, work: Path) -> pd.DataFrame:
    """Write the synthetic aggregates and devices; returns (and keeps) the ground truth."""
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.simulators.daily_population import PopulationSpec, generate, load_chunks

    spec = PopulationSpec(subscribers=subscribers, days=days)
    t = time.perf_counter()
    store = SqlStore.from_url(url)
    store.upgrade()
    truth: list[pd.DataFrame] = []

    def chunks() -> Any:
        for chunk in generate(spec):
            truth.append(chunk.truth[["msisdn", "expected_verdict"]])
            yield chunk

    load_chunks(store.engine, chunks())
    store.close()
    frame = pd.concat(truth, ignore_index=True)
    frame.to_csv(work / "truth.csv", index=False)
    print(
        f"generated {subscribers:,} subscribers x {days} days in "
        f"{time.perf_counter() - t:.0f} s (not timed)",
        file=sys.stderr,
    )
    return frame


def clear_recovery(url: str) -> None:
    """Empty the recovery tables, so a re-run scores from a clean state."""
    from mmsq.adapters.sql_scoring_schema import recovery_states, recovery_transitions, scoring_runs
    from mmsq.adapters.sql_store import SqlStore

    store = SqlStore.from_url(url)
    with store.engine.begin() as conn:
        for t in (recovery_states, recovery_transitions, scoring_runs):
            conn.execute(t.delete())
    store.close()


def performance(args: argparse.Namespace) -> int:
    from mmsq.simulators.daily_population import PopulationSpec, device_table

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-score-"))
    work.mkdir(parents=True, exist_ok=True)
    rules_dir = work / "rules"
    rules_dir.mkdir(exist_ok=True)
    device_table().to_csv(rules_dir / "devices.csv", index=False)
    db = work / "var" / "mmsq.db"
    url = f"sqlite:///{db}"
    last_day = PopulationSpec().last_day
    if args.reuse and db.exists() and (work / "truth.csv").exists():
        truth = pd.read_csv(work / "truth.csv", dtype=str)
        clear_recovery(url)
    else:
        if db.exists():
            db.unlink()
        truth = generate_store(url, args.subscribers, args.days, work)
    rows = int(os.path.getsize(db))

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env.update(MMSQ_DATA_DIR=str(work / "var"), MMSQ_RULES__DIR=str(rules_dir))
    env["MMSQ_LOG__FORMAT"] = "json"
    env["MMSQ_INGEST__TIMEZONE"] = TZ
    command = [sys.executable, "-m", "mmsq", "score", "--json", "--as-of", last_day.isoformat()]
    load_before = load_average()
    proc, elapsed, rss_mib, cpu = run_child(command, env)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    doc = json.loads(proc.stdout)
    print("== PERFORMANCE: mmsq score, end to end ==")
    print(
        f"subscribers {doc['subscribers']:,}, window {args.days} days, "
        f"SQLite file {rows / 2**20:,.0f} MiB"
    )
    print(
        f"wall time {elapsed:.1f} s (target <= 30 s), CPU {cpu:.1f} s (user + system), "
        f"peak RSS {rss_mib:,.0f} MiB (target <= 3072 MiB)"
    )
    print(f"load average before {load_before}, after {load_average()}")
    print(f"stage wall seconds {doc.get('seconds')}")
    print(f"verdicts {doc['by_verdict']}")
    print(f"transitions {doc['by_transition']}")
    print(
        f"timed command: MMSQ_DATA_DIR={work / 'var'} MMSQ_RULES__DIR={rules_dir} "
        f"MMSQ_INGEST__TIMEZONE={TZ} mmsq {' '.join(command[3:])}"
    )
    if not args.no_quality:
        predicted = assess(url, rules_dir, last_day)
        print_quality(
            "SYNTHETIC self-check against the generator's own ground truth "
            "(mmsq.simulators.daily_population; not the handset population simulator)",
            predicted,
            truth,
        )
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {machine()}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


# -- (b) quality on the handset population -------------------------------------------------


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.current = at

    def now(self) -> datetime:
        return self.current


def simulate(seed: int, subscribers: int, days: int, work: Path) -> tuple[str, date]:
    """Simulate ``days`` days of a population into ``work``; returns the database URL and the
    last day. The ground truth of every day (state per subscriber) is kept beside it."""
    from mmsq.adapters.cdr_csv import CdrFileReader
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.classify import Classifier
    from mmsq.ingest import IngestService
    from mmsq.msisdn import MsisdnNormaliser
    from mmsq.rules_loader import load_rules
    from mmsq.simulators.mmsc import MmscConfig, MmscSimulator
    from mmsq.simulators.population import HandsetPopulation
    from mmsq.simulators.population_config import PopulationConfig

    tz = ZoneInfo(TZ)
    if work.exists():
        shutil.rmtree(work)
    (work / "cdr").mkdir(parents=True)
    population = HandsetPopulation(PopulationConfig(subscribers=subscribers, seed=seed))
    start = population.today
    clock = _Clock(datetime.combine(start, dtime(0, 0), tzinfo=tz))
    mmsc = MmscSimulator(population, MmscConfig(seed=seed, timezone=TZ), clock=clock)
    url = f"sqlite:///{work / 'mmsq.db'}"
    store = SqlStore.from_url(url)
    store.upgrade()
    ingest = IngestService(
        store=store,
        classifier=Classifier(load_rules(None).status_codes),
        normaliser=MsisdnNormaliser("CN"),
        clock=clock,
        timezone=TZ,
    )
    msisdns = population.msisdns().tolist()
    states: list[np.ndarray] = []
    verdicts: list[np.ndarray] = []
    t = time.perf_counter()
    try:
        for n in range(days):
            day = start + timedelta(days=n)
            population.advance_to(day)
            truth = population.ground_truth_day(population.day)
            states.append(truth["state"].astype(str).to_numpy())
            verdicts.append(truth["expected_verdict"].astype(str).to_numpy())
            for name, at in (("am", dtime(7, 0)), ("pm", dtime(17, 0))):
                clock.current = datetime.combine(day, at, tzinfo=tz)
                mmsc.run_bulk_edition(f"ah-daily-{day:%Y%m%d}-{name}", msisdns, clock.current)
            clock.current = datetime.combine(day + timedelta(days=1), dtime(3, 0), tzinfo=tz)
            path = work / "cdr" / f"cdr-{day:%Y%m%d}.csv.gz"
            mmsc.export_cdr(day, path, gzip=True, as_of=clock.current)
            ingest.ingest([CdrFileReader(path)])
            path.unlink()
    finally:
        store.close()
    truth_frame = pd.DataFrame({"msisdn": np.asarray(msisdns, dtype=object)})
    for n in range(days):
        truth_frame[f"state_{n}"] = pd.Categorical(states[n])
        truth_frame[f"verdict_{n}"] = pd.Categorical(verdicts[n])
    truth_frame.to_parquet(work / "truth.parquet")
    last = start + timedelta(days=days - 1)
    (work / "done").write_text(last.isoformat())
    print(
        f"seed {seed}: simulated {subscribers:,} subscribers x {days} days in "
        f"{time.perf_counter() - t:.0f} s",
        file=sys.stderr,
    )
    return url, last


def truth_of_last_day(work: Path, days: int, settle: int) -> pd.DataFrame:
    """msisdn, expected_verdict (the last day's) and ``settled``: the state was the same on
    each of the last ``settle`` days."""
    frame = pd.read_parquet(work / "truth.parquet")
    last = days - 1
    state = frame[f"state_{last}"].astype(str)
    settled = pd.Series(True, index=frame.index)
    for n in range(max(0, days - settle), last):
        settled &= frame[f"state_{n}"].astype(str) == state
    return pd.DataFrame(
        {
            "msisdn": frame["msisdn"],
            "state": state,
            "expected_verdict": frame[f"verdict_{last}"].astype(str),
            "settled": settled.to_numpy(),
        }
    )


def population_quality(args: argparse.Namespace) -> int:
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-quality-"))
    base.mkdir(parents=True, exist_ok=True)
    settled_all: list[pd.DataFrame] = []
    everyone: list[pd.DataFrame] = []
    for seed in seeds:
        work = base / f"pop-{seed}-{args.population}-{args.days}"
        if args.reuse and (work / "done").exists():
            url = f"sqlite:///{work / 'mmsq.db'}"
            last = date.fromisoformat((work / "done").read_text().strip())
        else:
            url, last = simulate(seed, args.population, args.days, work)
        truth = truth_of_last_day(work, args.days, args.settle_days)
        predicted = assess(url, args.rules, last)
        both = predicted.merge(truth, on="msisdn", how="inner")
        both["seed"] = seed
        everyone.append(both)
        settled_all.append(both[both["settled"]])
        s = both[both["settled"]]
        print_quality(
            f"seed {seed}: {len(s):,} of {len(both):,} subscribers whose state held for the "
            f"last {args.settle_days} days, as of {last}",
            s[["msisdn", "verdict"]],
            s[["msisdn", "expected_verdict"]],
        )
    # Per seed MSISDNs repeat (same numbering plan): evaluate seed by seed, then pooled with
    # the seed in the key.
    pooled = pd.concat(settled_all, ignore_index=True)
    pooled["msisdn"] = pooled["seed"].astype(str) + ":" + pooled["msisdn"].astype(str)
    summary = print_quality(
        f"ALL SEEDS {args.seeds}, settled subscribers (state unchanged for the last "
        f"{args.settle_days} days)",
        pooled[["msisdn", "verdict"]],
        pooled[["msisdn", "expected_verdict"]],
    )
    full = pd.concat(everyone, ignore_index=True)
    full["msisdn"] = full["seed"].astype(str) + ":" + full["msisdn"].astype(str)
    print_quality(
        f"ALL SEEDS {args.seeds}, everyone (truth of the last day, state changes included)",
        full[["msisdn", "verdict"]],
        full[["msisdn", "expected_verdict"]],
    )
    changed = full[~full["settled"]]
    print(
        f"\nstate changed within the last {args.settle_days} days: {len(changed):,} subscribers; "
        "their verdicts: "
        + str(changed.groupby("expected_verdict")["verdict"].value_counts().to_dict())
    )
    misconf = next(
        (r for r in summary["per_verdict"] if r["verdict"] == "terminal_misconfigured"), None
    )
    if misconf:
        print(
            f"\nterminal_misconfigured (settled, pooled): precision {misconf['precision']} "
            f"(target >= 0.95), recall {misconf['recall']} (target >= 0.90)"
        )
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {machine()}")
    if args.workdir is None and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse the data in --workdir (not regenerated)"
    )
    ap.add_argument("--no-quality", action="store_true", help="skip the synthetic self-check")
    ap.add_argument("--population", type=int, help="quality on the handset population: size")
    ap.add_argument("--seeds", default="101,102,103", help="population seeds (comma-separated)")
    ap.add_argument(
        "--settle-days",
        type=int,
        default=7,
        help="evaluate subscribers whose true state held for this many last days",
    )
    ap.add_argument("--truth", type=Path, help="CSV msisdn,expected_verdict (external truth)")
    ap.add_argument("--db", help="database URL to score, with --truth")
    ap.add_argument("--rules", type=Path, default=None, help="operator rules directory")
    ap.add_argument("--as-of", default=None, help="score as of this date, with --truth")
    args = ap.parse_args()
    if args.truth is not None:
        if not args.db or not args.as_of:
            ap.error("--truth needs --db and --as-of")
        return external(args)
    if args.population:
        return population_quality(args)
    return performance(args)


if __name__ == "__main__":
    raise SystemExit(main())
