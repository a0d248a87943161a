"""MM7 delivery-report endpoint benchmark: DeliveryReportReq over HTTP into the store.

Starts the daemon's HTTP app (uvicorn in a thread, as ``mmsq daemon`` runs it) on 127.0.0.1
with a fresh SQLite database (or ``--db-url``), then POSTs distinct reports from ``--clients``
concurrent keep-alive connections, as an MMSC does. Prints reports per second end to end
(parse, classify, idempotent store, aggregates, answer), the command and the machine.

    python bench/bench_daemon_dr.py [--reports 3000] [--clients 4] [--db-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine_info import machine  # bench/machine_info.py, beside this script


def body(i: int) -> bytes:
    ns = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header>'
        f'<mm7:TransactionID xmlns:mm7="{ns}">t{i}</mm7:TransactionID></env:Header><env:Body>'
        f'<DeliveryReportReq xmlns="{ns}"><MM7Version>6.8.0</MM7Version>'
        f"<MessageID>B{i:09d}</MessageID><Recipient><Number>+86138{i % 10**8:08d}</Number>"
        "</Recipient><Date>2026-11-22T07:01:02+08:00</Date><MMStatus>Retrieved</MMStatus>"
        "</DeliveryReportReq></env:Body></env:Envelope>"
    ).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--db-url", default=None)
    args = ap.parse_args()

    import httpx

    from mmsq.adapters.sql_store import SqlStore
    from mmsq.bootstrap import build_daemon
    from mmsq.log import configure_logging
    from mmsq.settings import DaemonSettings, DatabaseSettings, Settings

    configure_logging("WARNING", "json")
    workdir = Path(tempfile.mkdtemp(prefix="mmsq-bench-dr-"))
    url = args.db_url or f"sqlite:///{workdir / 'mmsq.db'}"
    store = SqlStore.from_url(url)
    store.upgrade()
    store.close()
    settings = Settings(
        data_dir=workdir,
        database=DatabaseSettings(url=url),
        daemon=DaemonSettings(port=0),
    )
    parts = build_daemon(settings)  # the daemon's own wiring; only its HTTP server is started
    metrics, http = parts.metrics, parts.http
    http.start()
    failures = [0]
    per_client = args.reports // args.clients

    def client(k: int) -> None:
        with httpx.Client(base_url=http.url, timeout=30) as c:
            for i in range(k * per_client, (k + 1) * per_client):
                r = c.post("/mm7/dr", content=body(i), headers={"Content-Type": "text/xml"})
                if r.status_code != 200:
                    failures[0] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    http.stop()
    stored = metrics.registry.get_sample_value(
        "mmsq_delivery_reports_received_total", {"outcome": "stored"}
    )
    parts.app.close()
    total = per_client * args.clients
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"database: {url.split('://')[0]}")
    print(
        f"{total} reports from {args.clients} connections in {elapsed:.2f} s: "
        f"{total / elapsed:.0f} reports/s, {stored:.0f} stored, {failures[0]} failed"
    )
    print(f"machine: {machine()}")
    return 0 if failures[0] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
