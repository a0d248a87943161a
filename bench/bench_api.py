"""Agent API benchmark: diagnosis against a bare one-row endpoint, on PostgreSQL and SQLite.

For each database a store is filled the way production fills it (excluded from timing):
30 days of delivery events, two editions a day, for N subscribers, ingested day by day
through the ingest session (event keys, columnar segments in chunks of ``--chunk-events`` in
submission order as a CDR file comes, then aggregate, device and edition blocks); one active
subscription per subscriber imported as a BOSS snapshot; 5% of the subscribers in a recovery
state (flagged or suspended, with their transitions), as a scoring run leaves them. The API is
served as the daemon serves it (mounted under /v1) by uvicorn on 127.0.0.1, with one worker
process and then two (as `mmsq api --workers 2` serves it, rate limits shared);
wrk runs for the given time at 32 connections, first against
``GET /v1/subscribers/{msisdn}/diagnosis`` (random subscribers, full stack: token, rate limit,
audit write, subscription, recent events, device, recovery state and transitions, resends),
then against a bare FastAPI endpoint in the same server doing one primary-key row read.
Prints requests/s and p50/p99 latency, the command, the machine and the load average.

    python bench/bench_api.py [--subscribers 1500000] [--duration 60] [--connections 32]
                              [--chunk-events 240000] [--db postgres,sqlite] [--workers 1,2]
                              [--workdir DIR [--reuse]]

PostgreSQL: MMSQ_BENCH_PG_URL (a server whose user may CREATE DATABASE), else a throwaway
cluster (tests/pg_cluster.py). Target: diagnosis >= 500 requests/s with p99 <= 100 ms on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from machine_info import machine  # bench/machine_info.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
DAYS = 30
FIRST_DAY = date(2026, 10, 24)
PREFIX = "+86138"  # subscriber i is +86138 followed by i on 8 digits

WRK_SCRIPT = """
local n = {n}
wrk.headers["Authorization"] = "Bearer {token}"
math.randomseed(os.time() + (tonumber(tostring({{}}):sub(8), 16) or 0))
request = function()
  local path = string.format("{path}", math.random(0, n - 1))
  return wrk.format("GET", path)
end
"""


# -- data ----------------------------------------------------------------------------------


def _day_events(day: int, n: int, first: int, count: int) -> Any:
    """Events ``first`` .. ``first + count`` of one day, in submission order (as a CDR has
    them): the morning edition to every subscriber, then the evening one."""
    import numpy as np
    import pandas as pd

    from mmsq.ingest import EVENT_COLUMNS

    i = np.arange(first, first + count, dtype=np.int64)
    e = i // n  # 0: am, 1: pm
    s = (i % n) * 7919 % n  # a permutation: submission order is not MSISDN order
    base_ts = int(datetime(2026, 10, 24, 7, 0, tzinfo=UTC).timestamp()) + day * 86400
    submitted = base_ts + e * 43200 + (i % n) * 3600 // n
    d = date.fromordinal(FIRST_DAY.toordinal() + day)
    # A deterministic mix: 80% delivered, 10% not fetched, 6% unreachable, 4% memory full.
    h = (s * 7919 + day * 104729 + e * 15485863) % 100
    code = np.select([h < 80, h < 90, h < 96], ["Retrieved", "Expired", "Unreachable"], "4006")
    cause = np.select(
        [h < 80, h < 90, h < 96], ["delivered", "not_fetched", "unreachable"], "terminal_capacity"
    )
    digits = pd.Series(s).astype(str).str.zfill(8)
    msisdn = PREFIX + digits
    ed = f"bench-daily-{d:%Y%m%d}-"
    frame = pd.DataFrame(
        {
            "event_key": day * 2 * n + s * 2 + e,
            "msisdn": msisdn.to_numpy(),
            "message_id": ("m" + pd.Series(day * 2 * n + s * 2 + e).astype(str)).to_numpy(),
            "edition": np.where(e == 0, ed + "am", ed + "pm"),
            "status_source": "mm7",
            "status_code": code,
            "error_code": None,
            "cause": cause,
            "final": True,
            "notify_ok": 1,
            "imei": np.where(e == 0, ("86171203" + digits).to_numpy(), None),
            "region": "bench",
            "submitted_ts": submitted,
            "done_ts": submitted + 120,
            "day": d,
        }
    )
    return frame[list(EVENT_COLUMNS)]


def _subscriptions(store: Any, n: int, work: Path) -> None:
    """One active subscription per subscriber, as `mmsq subscriptions import` stores it."""
    import numpy as np
    import pandas as pd

    from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
    from mmsq.adapters.subscription_csv import SnapshotFileReader
    from mmsq.bootstrap import SystemClock
    from mmsq.msisdn import MsisdnNormaliser
    from mmsq.subscription_import import SnapshotImportService
    from mmsq.subscriptions import Source

    path = work / "boss.csv"
    digits = pd.Series(np.arange(n)).astype(str).str.zfill(8)
    pd.DataFrame(
        {"msisdn": (PREFIX + digits).to_numpy(), "product": "bench-daily", "status": "active"}
    ).to_csv(path, index=False)
    service = SnapshotImportService(
        SqlSubscriptionStore(store.engine),
        MsisdnNormaliser("CN"),
        SystemClock(),
        "Asia/Shanghai",
    )
    service.import_snapshot(Source.BOSS, [SnapshotFileReader(path)], FIRST_DAY)
    path.unlink()


def _recovery(store: Any, n: int) -> None:
    """5% of the subscribers in a recovery state, with the transitions that put them there."""
    import numpy as np
    import pandas as pd

    from mmsq.adapters.sql_recovery import SqlRecoveryStore
    from mmsq.recovery import STATE_COLUMNS, TRANSITION_COLUMNS

    ids = np.arange(0, n, 20)
    msisdn = PREFIX + pd.Series(ids).astype(str).str.zfill(8)
    suspended = (ids // 20) % 2 == 1
    at = pd.Timestamp(datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    reason = "terminal_misconfigured (score 0.90): 6 failed days in a row; MM never fetched"
    flagged = pd.DataFrame(
        {
            "msisdn": msisdn,
            "at": at,
            "from_state": "active",
            "to_state": "flagged",
            "event": "verdict",
            "cause": "terminal_misconfigured",
            "evidence": reason,
            "run_id": "bench",
        }
    )
    to_suspended = flagged[suspended].assign(
        from_state="flagged",
        to_state="suspended",
        event="suspend_threshold_reached",
        cause="6 failed days",
    )
    transitions = pd.concat([flagged, to_suspended], ignore_index=True)
    states = pd.DataFrame(
        {
            "msisdn": msisdn,
            "state": np.where(suspended, "suspended", "flagged"),
            "verdict": "terminal_misconfigured",
            "reason": reason,
            "since": at,
            "since_day": "2026-11-20",
            "suspended_day": np.where(suspended, "2026-11-20", None),
            "probes_sent": 0,
            "last_probe_at": None,
        }
    )
    SqlRecoveryStore(store.engine).apply_transitions(
        transitions[list(TRANSITION_COLUMNS)], states[list(STATE_COLUMNS)]
    )


def generate(url: str, n: int, chunk: int, work: Path) -> float:
    """Fill an upgraded, empty store; returns the seconds it took."""
    from mmsq.adapters.sql_store import SqlStore

    store = SqlStore.from_url(url)
    t0 = time.perf_counter()
    try:
        store.upgrade()
        for day in range(DAYS):
            t = time.perf_counter()
            with store.ingest_session() as session:  # one CDR file a day
                for first in range(0, 2 * n, chunk):
                    session.add_events(_day_events(day, n, first, min(chunk, 2 * n - first)))
            print(
                f"  day {day + 1}/{DAYS} ingested in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        _subscriptions(store, n, work)
        _recovery(store, n)
        if store.dialect == "postgresql":
            auto = store.engine.execution_options(isolation_level="AUTOCOMMIT")
            with auto.connect() as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"  {store.event_count():,} events", file=sys.stderr, flush=True)
    finally:
        store.close()
    return time.perf_counter() - t0


# -- the server (run in a child process) -------------------------------------------------------


class _NoSending:
    """The bench server queues nothing; an outbox that would send is not needed."""

    def submit(self, submission: object) -> object:
        raise RuntimeError("the benchmark does not send")


def make_app() -> Any:
    """The served app, built in each worker process (a uvicorn factory): the agent API mounted
    under /v1 as the daemon and `mmsq api` mount it, and the bare endpoint beside it. With
    several workers, rate limits are shared through a file, as `mmsq api --workers` does."""
    import sqlalchemy as sa

    from mmsq.adapters.shared_rate_limit import SharedRateLimiter
    from mmsq.adapters.sql_mms_outbox import SqlMmsOutboxStore
    from mmsq.adapters.sql_store import create_engine_for
    from mmsq.adapters.sql_subscriptions_schema import subscriptions
    from mmsq.api import create_app
    from mmsq.api.app import serve_app
    from mmsq.bootstrap import SystemClock, build_api_services
    from mmsq.classify import Classifier
    from mmsq.mms_content import OutboxContent
    from mmsq.mms_outbox import MmsOutbox
    from mmsq.rules_loader import load_rules
    from mmsq.settings import ApiSettings, Settings

    url = os.environ["BENCH_API_URL"]
    limits = os.environ.get("BENCH_API_LIMITS")
    threads = int(os.environ.get("BENCH_API_THREADS") or ApiSettings().threads)
    engine = create_engine_for(url, pool_size=threads + 2, max_overflow=4)
    api_settings = ApiSettings(
        rate_limit_per_minute=10_000_000, rate_limit_burst=1_000_000, threads=threads
    )
    settings = Settings(api=api_settings)
    clock = SystemClock()
    outbox = MmsOutbox(
        SqlMmsOutboxStore(engine),
        _NoSending(),  # type: ignore[arg-type]
        OutboxContent("probe", "probe"),
        Classifier(load_rules(None).status_codes),
        clock,
    )
    limiter = None
    if limits:
        limiter = SharedRateLimiter(
            Path(limits), api_settings.rate_limit_per_minute, api_settings.rate_limit_burst, clock
        )
    services = build_api_services(
        settings, engine, outbox=outbox, clock=clock, rate_limiter=limiter
    )
    api = create_app(services)

    root = serve_app(api, on_close=engine.dispose)  # /v1, threads, heap: as served
    one_row = sa.select(subscriptions.c.status).where(
        subscriptions.c.msisdn == sa.bindparam("m"), subscriptions.c.product == "bench-daily"
    )

    @root.get("/bare/{msisdn}")
    def bare(msisdn: str) -> dict[str, str | None]:
        with engine.connect() as conn:
            status = conn.execute(one_row, {"m": "+86" + msisdn}).scalar()
        return {"status": status}

    return root


def serve(url: str, port: int, workers: int) -> None:
    import uvicorn

    from mmsq.adapters.http_workers import ReusePortWorkers

    os.environ["BENCH_API_URL"] = url
    options: dict[str, Any] = {"log_level": "warning", "access_log": False}
    app = "bench_api:make_app"  # bench/ is on the path of the workers as it is on this one's
    if workers == 1:
        uvicorn.run(app, factory=True, host="127.0.0.1", port=port, **options)
        return
    # As `mmsq api --workers N` serves: rate limits shared, a listening socket per worker.
    os.environ["BENCH_API_LIMITS"] = str(Path(tempfile.mkdtemp()) / "api-rate-limits.bin")
    ReusePortWorkers(app, "127.0.0.1", port, workers, options).run()


# -- driving it ----------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(url: str, workers: int) -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            url,
            "--port",
            str(port),
            "--workers-one",
            str(workers),
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("MMSQ_")},
    )
    try:
        import httpx2 as httpx

        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/bare/13800000000", timeout=2)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.2)
        time.sleep(3 if workers > 1 else 0)  # the other workers start alongside
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wrk(
    port: int, path_format: str, n: int, token: str, args: argparse.Namespace
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT.format(n=n, token=token, path=path_format))
        script = fh.name
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--latency",
                # A slow endpoint must still be measured: wrk's default 2 s timeout drops the
                # latency of every request slower than that.
                "--timeout",
                "30s",
                "-s",
                script,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script)
    out = done.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no {label}% in wrk output:\n{out}")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*timeout (\d+)", out)
    return {
        "rps": rps,
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "timeouts": float(errors.group(1)) if errors else 0.0,
    }


def make_token(url: str) -> str:
    from mmsq.adapters.sql_api import SqlApiStore
    from mmsq.adapters.sql_store import create_engine_for
    from mmsq.agents import AgentService, Role
    from mmsq.bootstrap import SystemClock

    engine = create_engine_for(url)
    try:
        service = AgentService(SqlApiStore(engine), SystemClock())
        _, token = service.add(f"bench-{time.time_ns():x}", Role.AGENT)  # one per run
    finally:
        engine.dispose()
    return token


def stored_events(url: str) -> int:
    """Events the store at ``url`` holds (0: none, or no schema yet)."""
    from mmsq.adapters.sql_store import SqlStore

    store = SqlStore.from_url(url)
    try:
        return int(store.event_count())
    except Exception:  # not upgraded yet
        return 0
    finally:
        store.close()


def run_one(name: str, url: str, args: argparse.Namespace, work: Path) -> list[dict[str, object]]:
    n = args.subscribers
    if args.reuse and stored_events(url) == n * DAYS * 2:
        print(f"[{name}] reusing the store of {n:,} subscribers", file=sys.stderr)
        gen_s = None
    else:
        print(f"[{name}] generating {n:,} subscribers x {DAYS} days x 2 editions", file=sys.stderr)
        gen_s = generate(url, n, args.chunk_events, work)
    token = make_token(url)
    results: list[dict[str, object]] = []
    for workers in (int(w) for w in args.workers.split(",")):
        with server(url, workers) as port:
            diag = wrk(port, "/v1/subscribers/138%08d/diagnosis", n, token, args)
            diag_load = load()
            bare = wrk(port, "/bare/138%08d", n, token, args)
        results.append(
            {
                "db": name,
                "workers": workers,
                "gen_s": gen_s,
                "diagnosis": diag,
                "bare": bare,
                "load": {"diagnosis": diag_load, "bare": load()},
            }
        )
    return results


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_500_000)
    ap.add_argument("--duration", type=int, default=60, help="seconds of wrk per endpoint")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--chunk-events", type=int, default=240_000, help="events per ingest chunk (32 MiB CDR)"
    )
    ap.add_argument("--db", default="postgres,sqlite")
    ap.add_argument(
        "--workers",
        default="1,2",
        help="API worker processes to measure, comma-separated (rate limits shared when > 1)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="[api] threads of each worker (default: the setting's default)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="kept afterwards when given")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="skip data generation when the store (in --workdir, or at MMSQ_BENCH_PG_URL) "
        "already holds the events of --subscribers",
    )
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--workers-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers_one)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    if args.threads:
        os.environ["BENCH_API_THREADS"] = str(args.threads)  # for the served workers
    results = []
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mmsq-bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.db.split(","):
            if name == "sqlite":
                results += run_one(name, f"sqlite:///{work / 'bench.db'}", args, work)
            elif name == "postgres":
                with contextlib.ExitStack() as stack:
                    pg_url = os.environ.get("MMSQ_BENCH_PG_URL")
                    if pg_url is None:
                        sys.path.insert(0, str(ROOT))
                        from tests.pg_cluster import ThrowawayPostgres

                        pg = stack.enter_context(ThrowawayPostgres())
                        pg_url = pg.create_database("mmsq_bench")
                    results += run_one(name, pg_url, args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    report(args, results)
    return 0


def report(args: argparse.Namespace, results: list[dict[str, object]]) -> None:
    cmd = " ".join(["python bench/bench_api.py", *sys.argv[1:]])
    print(f"command: {cmd}")
    print(f"machine: {machine()}")
    print(
        f"store: {args.subscribers:,} subscribers x {DAYS} days x 2 editions = "
        f"{args.subscribers * DAYS * 2:,} events; wrk -t2 -c{args.connections} -d{args.duration}s"
    )
    from mmsq.settings import ApiSettings

    print(f"[api] threads per worker: {args.threads or ApiSettings().threads}")
    print(
        "| database | API workers | endpoint | requests/s | p50 ms | p99 ms | non-2xx "
        "| timeouts (30 s) | data generation | load average after (1, 5, 15 min) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        gen = "reused" if r["gen_s"] is None else f"{r['gen_s']:.0f} s"
        for ep in ("diagnosis", "bare"):
            f: dict[str, float] = r[ep]  # type: ignore[assignment]
            print(
                f"| {r['db']} | {r['workers']} | {ep} | {f['rps']:,.0f} | {f['p50']:.1f} | "
                f"{f['p99']:.1f} | {f['non2xx']:.0f} | {f['timeouts']:.0f} | {gen} | "
                f"{r['load'][ep]} |"  # type: ignore[index]
            )
    print("target: diagnosis >= 500 requests/s with p99 <= 100 ms on PostgreSQL")


if __name__ == "__main__":
    sys.exit(main())
