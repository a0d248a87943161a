"""Render the weekly report from a realistic dataset: docs/report-example.png and .html.

Generates two weeks of MMSC CDRs (2026-W46 and 2026-W47) for a simulated province with
mmsq.simulators.cdr_generator, ingests them into a fresh SQLite database, builds the report for
2026-W47 and screenshots its HTML in headless Chromium. One evening edition is delivered slowly
(its sending ports are overloaded), so the report shows the latency warning.

    python bench/render_report_example.py [--subscribers 5000] [--out docs/report-example.png]
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from mmsq.adapters.cdr_csv import CdrFileReader
from mmsq.bootstrap import build_app, report_source
from mmsq.report import ReportConfig, make_report
from mmsq.report_data import ReportWeek
from mmsq.report_devices import load_device_table
from mmsq.settings import Settings
from mmsq.simulators.cdr_generator import CdrSpec, write_cdr

ROOT = Path(__file__).resolve().parents[1]
WEEK = ReportWeek(2026, 47)
SLOW_DAY = date(2026, 11, 19)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 0, 30, tzinfo=UTC)


def _slow_down(path: Path, minutes: int) -> None:
    """Delay the evening edition of one day: its reports arrive ``minutes`` later."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    _header, _, _body = text.partition("\n")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="skip")
    late = frame["edition"].str.endswith("-pm") & (frame["done_at"] != "")
    done = pd.to_datetime(frame.loc[late, "done_at"], format="ISO8601")
    frame.loc[late, "done_at"] = (done + timedelta(minutes=minutes)).dt.strftime(
        "%Y-%m-%dT%H:%M:%S+08:00"
    )
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, index=False)


def screenshot(html: Path, png: Path, width: int = 1000, height: int = 2400) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (Debian package: chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                "--hide-scrollbars",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-example.png")
    parser.add_argument("--html", type=Path, default=None, help="also keep the HTML here")
    parser.add_argument("--height", type=int, default=4180, help="screenshot height (px)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work, report={"p90_limit_s": 1800, "top_n": 8})
        app = build_app(settings, check_schema=False)
        app.store.upgrade()
        started = time.perf_counter()
        files = []
        day = WEEK.previous().start
        for i in range(14):
            path = work / f"cdr-{day}.csv.gz"
            write_cdr(
                path,
                CdrSpec(subscribers=args.subscribers, day=day, seed=100 + i, malformed_share=0.001),
            )
            if day == SLOW_DAY:
                _slow_down(path, 45)
            files.append(path)
            day += timedelta(days=1)
        summary = app.ingest.ingest([CdrFileReader(f, settings.ingest.chunk_bytes) for f in files])
        print(f"ingested {summary.stored:,} events in {time.perf_counter() - started:.1f} s")
        devices = load_device_table(ROOT / "tests" / "fixtures" / "devices.csv")
        started = time.perf_counter()
        report, rendered = make_report(
            report_source(app),
            ReportConfig.from_settings(settings),
            devices=devices,
            clock=FixedClock(),
            week=WEEK,
        )
        app.close()
        print(
            f"report figures and rendering for {summary.stored:,} events over two weeks: "
            f"{time.perf_counter() - started:.2f} s (SQLite)"
        )
        html = args.html or work / "report.html"
        html.write_text(rendered.browser_html(), encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(html, args.out, height=args.height)
    print(f"{report.week.label}: receive success {report.totals.rate.text}; wrote {args.out}")


if __name__ == "__main__":
    main()
