"""Reconciliation benchmark: three snapshots of a province's subscriber base, with drift.

Generates BOSS, MISC and content-platform snapshots (1.5M subscriptions each by default, a few
per cent of each difference class planted), imports them into the default SQLite store (timed
separately, not part of the target), then times ``mmsq reconcile --json --export`` in a child
process: wall time and peak RSS of that process. Beside it, the same three-way comparison as one
DuckDB SQL query over the same CSV files (when the optional ``bench`` extra is installed), and
the ratio.

    python bench/bench_reconcile.py [--subscribers 1500000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from machine_info import machine  # bench/machine_info.py, beside this script

AS_OF = date(2026, 11, 22)

# The comparison mmsq makes, in one SQL statement over the raw files: numbers normalised to
# national digits, a full outer join on (number, product), the five classes counted.
DUCKDB_SQL = """
WITH
b AS (SELECT DISTINCT regexp_replace(msisdn, '^\\+86', '') AS m, product, status
      FROM read_csv('{boss}', all_varchar = true) WHERE msisdn NOT LIKE '12345'),
s AS (SELECT DISTINCT regexp_replace(msisdn, '^\\+86', '') AS m, product, status
      FROM read_csv('{misc}', all_varchar = true) WHERE msisdn NOT LIKE '12345'),
p AS (SELECT DISTINCT regexp_replace(msisdn, '^\\+86', '') AS m, product, status
      FROM read_csv('{platform}', all_varchar = true) WHERE msisdn NOT LIKE '12345'),
bs AS (SELECT coalesce(b.m, s.m) AS m, coalesce(b.product, s.product) AS product,
              b.status AS bst, s.status AS mst
       FROM b FULL JOIN s ON b.m = s.m AND b.product = s.product),
j AS (SELECT coalesce(bs.m, p.m) AS m, coalesce(bs.product, p.product) AS product,
             bst, mst, p.status AS pst
      FROM bs FULL JOIN p ON bs.m = p.m AND bs.product = p.product),
k AS (SELECT *, (bst = 'active' AND pst IS NULL) AS billed_only,
                (pst = 'active' AND bst IS NULL) AS sent_only FROM j),
x AS (SELECT *, bool_or(billed_only) OVER w AS any_billed, bool_or(sent_only) OVER w AS any_sent
      FROM k WINDOW w AS (PARTITION BY m))
SELECT
  count(*) FILTER (WHERE billed_only AND NOT any_sent) AS billed_not_on_send_list,
  count(*) FILTER (WHERE sent_only AND NOT any_billed) AS on_send_list_not_billed,
  count(*) FILTER (WHERE (bst IS NOT NULL AND mst IS NOT NULL AND bst <> mst
                          AND 'active' IN (bst, mst))
                      OR (bst IS NOT NULL AND pst IS NOT NULL AND bst <> pst
                          AND 'active' IN (bst, pst))
                      OR (mst IS NOT NULL AND pst IS NOT NULL AND mst <> pst
                          AND 'active' IN (mst, pst))) AS status_mismatch,
  count(*) FILTER (WHERE (billed_only AND any_sent) OR (sent_only AND any_billed))
    AS product_mismatch,
  count(*) FILTER (WHERE mst IS NULL AND (bst = 'active' OR pst = 'active')) AS missing_in_misc
FROM x
"""


def run_child(args: list[str], env: dict[str, str], out: Path) -> tuple[float, float, int]:
    """Run a child process; its wall time (s), peak RSS (MiB) and exit code."""
    t = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, usage.ru_maxrss / 1024, proc.returncode


def duckdb_time(files: dict[str, Path]) -> tuple[float, dict[str, int]] | None:
    try:
        import duckdb
    except ImportError:
        return None
    sql = DUCKDB_SQL.format(**{k: str(v) for k, v in files.items()})
    con = duckdb.connect()
    t = time.perf_counter()
    cur = con.execute(sql)
    row = cur.fetchone()
    elapsed = time.perf_counter() - t
    names = [d[0] for d in cur.description]
    con.close()
    return elapsed, dict(zip(names, row or (), strict=True))


def prepare(
    work: Path, files: dict[str, Path], env: dict[str, str], subscribers: int, reuse: bool
) -> tuple[dict[str, Any], dict[str, float]] | None:
    """Generate and import the snapshots (or reuse them); the planted counts, import times."""
    from mmsq.simulators.subscription_snapshots import SnapshotSpec, write_snapshots

    mmsq = [sys.executable, "-m", "mmsq"]
    imports: dict[str, float] = {}
    if reuse and (work / "planted.json").is_file():
        return json.loads((work / "planted.json").read_text()), imports
    t = time.perf_counter()
    planted = write_snapshots(work / "snapshots", SnapshotSpec(subscribers=subscribers))
    (work / "planted.json").write_text(json.dumps(planted))
    print(f"generated {planted['rows']} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    subprocess.run([*mmsq, "db", "upgrade"], env=env, check=True, capture_output=True)
    for name, path in files.items():
        cmd = [*mmsq, "subscriptions", "import", "--json", "--source", name, str(path)]
        wall, _, rc = run_child([*cmd, "--as-of", AS_OF.isoformat()], env, work / "import.json")
        if rc != 0:
            print(f"import of {name} failed", file=sys.stderr)
            return None
        imports[name] = wall
    return planted, imports


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse the snapshots and store in --workdir (kept)"
    )
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = {name: work / "snapshots" / f"{name}.csv" for name in ("boss", "misc", "platform")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")}
    env["MMSQ_DATA_DIR"] = str(work / "var")
    env["MMSQ_LOG__FORMAT"] = "json"
    mmsq = [sys.executable, "-m", "mmsq"]
    prepared = prepare(work, files, env, args.subscribers, args.reuse)
    if prepared is None:
        return 1
    planted, imports = prepared

    as_of = (AS_OF + timedelta(days=1)).isoformat()
    cmd = [*mmsq, "reconcile", "--json", "--as-of", as_of, "--export", str(work / "export")]
    load = os.getloadavg()[0]
    wall, rss, rc = run_child(cmd, env, work / "reconcile.json")
    if rc != 0:
        print("reconcile failed", file=sys.stderr)
        return 1
    report = json.loads((work / "reconcile.json").read_text())
    duck = duckdb_time(files)

    print(f"command: python bench/bench_reconcile.py --subscribers {args.subscribers}")
    print(f"machine: {machine()}")
    print(f"snapshot rows: {planted['rows']}")
    print(f"load average before the reconcile run (1 min): {load:.1f}")
    if imports:
        print(
            "import (not in the target): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in imports.items())
            + f", total {sum(imports.values()):.1f} s"
        )
    print(f"subscriptions compared: {report['compared']:,}")
    expected = planted["expected"]
    assert isinstance(expected, dict)
    for cls, n in report["counts"].items():
        print(f"  {cls:<26} found {n:>9,}  planted {expected[cls]:>9,}")
    print(
        f"reconcile (mmsq reconcile --json --export, whole process): {wall:.2f} s "
        f"(in-service {report['seconds']:.2f} s; target <= 5 s)"
    )
    print(f"peak RSS of the reconcile process: {rss:,.0f} MiB (target <= 2048)")
    if duck is None:
        print("DuckDB: not installed (pip install 'mmsq[bench]'); comparison skipped")
    else:
        dt, counts = duck
        print(f"DuckDB, one SQL query over the same CSV files: {dt:.2f} s; counts {counts}")
        print(f"ratio mmsq reconcile / DuckDB: {wall / dt:.1f}x")
    if not (args.keep or args.reuse) and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
