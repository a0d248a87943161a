"""Diagnosis look-up benchmark: ``SqlStore.recent_events`` on a month of a province's events.

Stores ``--days`` days of synthetic events (``--per-day`` a subscriber a day, what ingest
hands the store: classified, keyed) for ``--subscribers`` subscribers in a fresh SQLite store,
one ingest session a day in chunks as a CDR file would give them, and times the upkeep of the
recent-events index inside those sessions. Then times ``--lookups`` random look-ups
(``recent_events(msisdn, 20)``, and ``device(msisdn)``) one after another, the same look-ups
from ``--threads`` threads (requests/s), and a few through the event segments (the look-up before
the index) for comparison. Prints p50/p99, the command and the machine.

Target (issue 8): >= 500 look-ups/s with p99 <= 100 ms on 30 days x 1.5M subscribers.

    python bench/bench_recent_events.py [--subscribers 1500000] [--days 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import machine

from mmsq.adapters import recent_blocks
from mmsq.adapters.sql_store import SqlStore
from mmsq.domain import CAUSE_CLASSES

_FIRST = date(2026, 10, 24)
_CHUNK = 240_000  # events in a 32 MiB CDR chunk
_CODES = [("mm7", "Retrieved", "delivered", True)] * 8 + [
    ("mm7", "Expired", "not_fetched", True),
    ("cmpp", "MK:0024", "unreachable", True),
    ("mm7", "1000", "pending", False),
]


def _timed(spent: defaultdict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t

    return wrapper


def day_events(
    msisdn_text: np.ndarray, day: date, per_day: int, rng: np.random.Generator, key0: int
) -> pd.DataFrame:
    """A day of events in ``EVENT_COLUMNS``, as ingest hands them to the store."""
    n = len(msisdn_text) * per_day
    who = np.tile(np.arange(len(msisdn_text)), per_day)
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 8 * 3600
    submitted = midnight + 7 * 3600 + rng.integers(0, 12 * 3600, n)
    pick = rng.integers(0, len(_CODES), n)
    ns, code, cause, final = (np.asarray([c[i] for c in _CODES], dtype=object) for i in range(4))
    final_arr = final[pick].astype(bool)
    done = np.where(final_arr, submitted + rng.integers(5, 900, n), -1)
    imei = np.char.add("35332510", (who % 900_000 + 100_000).astype(str))
    imei = np.char.add(imei, "1")
    return pd.DataFrame(
        {
            "event_key": key0 + np.arange(n, dtype=np.int64),
            "msisdn": msisdn_text[who],
            "message_id": np.char.add(f"M{day:%m%d}-", np.arange(n).astype(str)),
            "edition": np.where(np.arange(n) < n // 2, f"ed-{day:%m%d}-am", f"ed-{day:%m%d}-pm"),
            "status_source": ns[pick],
            "status_code": code[pick],
            "error_code": None,
            "cause": pd.Categorical(cause[pick], categories=list(CAUSE_CLASSES)),
            "final": final_arr,
            "notify_ok": pd.array(np.ones(n, dtype=np.int8), dtype="Int8"),
            "imei": imei,
            "region": np.where(who % 3 == 0, "Hefei", "Wuhu"),
            "submitted_ts": submitted,
            "done_ts": pd.Series(done, dtype="Int64").mask(done < 0),
            "day": day.isoformat(),
        }
    )


def percentile_ms(samples: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, p))


def main() -> int:  # noqa: PLR0915 (one linear script)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=2)
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep the store in this folder (and reuse it)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mmsq-bench-recent-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "mmsq.db"
    reuse = db.exists()
    store = SqlStore.from_url(f"sqlite:///{db}")
    rng = np.random.default_rng(11)
    digits = np.sort(8613800000000 + rng.permutation(args.subscribers * 3)[: args.subscribers])
    msisdn_text = np.char.add("+", digits.astype(str)).astype(object)
    try:
        store.upgrade()
        spent: defaultdict[str, float] = defaultdict(float)
        if not reuse:
            writer = recent_blocks.RecentIndexWriter
            writer.flush = _timed(spent, "index", writer.flush)  # type: ignore[method-assign]
            total = time.perf_counter()
            for d in range(args.days):
                day = _FIRST + timedelta(days=d)
                events = day_events(msisdn_text, day, args.per_day, rng, d * 10**9)
                t = time.perf_counter()
                before = spent["index"]
                with store.ingest_session() as session:
                    for start in range(0, len(events), _CHUNK):
                        session.add_events(events.iloc[start : start + _CHUNK])
                took = time.perf_counter() - t
                spent["store"] += took
                print(
                    f"day {d + 1}/{args.days}: {len(events):,} events stored in {took:.1f} s, "
                    f"of which recent-events index {spent['index'] - before:.2f} s",
                    flush=True,
                )
            print(
                f"stored {store.event_count():,} events in {time.perf_counter() - total:.0f} s; "
                f"index upkeep {spent['index']:.1f} s of {spent['store']:.1f} s in the sessions "
                f"({100 * spent['index'] / spent['store']:.1f}%)"
            )
        print(f"database: {db.stat().st_size / 2**30:.2f} GiB")
        picks = rng.choice(msisdn_text, args.lookups)
        for m in picks[:50]:  # warm the page cache the way a running service has it
            store.recent_events(str(m), 20)
        lat: list[float] = []
        dev: list[float] = []
        found = 0
        for m in picks:
            t = time.perf_counter()
            rows = store.recent_events(str(m), 20)
            lat.append(time.perf_counter() - t)
            found += len(rows)
            t = time.perf_counter()
            store.device(str(m))
            dev.append(time.perf_counter() - t)
        print(
            f"recent_events(msisdn, 20), {args.lookups:,} random look-ups one after another: "
            f"p50 {percentile_ms(lat, 50):.2f} ms, p99 {percentile_ms(lat, 99):.2f} ms, "
            f"max {max(lat) * 1000:.1f} ms ({found / args.lookups:.1f} events each)"
        )
        print(
            f"device(msisdn): p50 {percentile_ms(dev, 50):.2f} ms, "
            f"p99 {percentile_ms(dev, 99):.2f} ms"
        )
        per_thread = np.array_split(picks, args.threads)
        tl: list[float] = []
        lock = threading.Lock()

        def worker(ms: np.ndarray) -> None:
            mine = []
            for m in ms:
                t = time.perf_counter()
                store.recent_events(str(m), 20)
                mine.append(time.perf_counter() - t)
            with lock:
                tl.extend(mine)

        threads = [threading.Thread(target=worker, args=(ms,)) for ms in per_thread]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        print(
            f"{args.threads} threads: {len(tl) / wall:,.0f} look-ups/s, "
            f"p50 {percentile_ms(tl, 50):.2f} ms, p99 {percentile_ms(tl, 99):.2f} ms"
        )
        seg: list[float] = []
        with store.engine.connect() as conn:
            for m in picks[:100]:
                t = time.perf_counter()
                store._recent_from_segments(conn, int(str(m)[1:]), 20)
                seg.append(time.perf_counter() - t)
        print(
            "the same look-up through the event segments (as before the index, 100 look-ups): "
            f"p50 {percentile_ms(seg, 50):.1f} ms, p99 {percentile_ms(seg, 99):.1f} ms"
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {rss:,.0f} MiB")
        print(
            "command: python bench/bench_recent_events.py "
            f"--subscribers {args.subscribers} --days {args.days} --per-day {args.per_day} "
            f"--lookups {args.lookups} --threads {args.threads}"
        )
        print(f"machine: {machine()}")
    finally:
        store.close()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
