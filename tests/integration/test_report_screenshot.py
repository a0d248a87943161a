"""The report HTML renders in a real browser engine (headless Chromium)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mmsq.adapters.sql_report import SqlReportSource
from mmsq.adapters.sql_store import SqlStore
from mmsq.report import ReportConfig, make_report
from mmsq.report_data import ReportWeek
from mmsq.report_devices import load_device_table
from tests.report_dataset import DEVICES_CSV, insert_dataset


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 1, tzinfo=UTC)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("chromium is required in CI (Debian package chromium)", pytrace=False)
        pytest.skip("chromium is not installed (Debian package chromium)")
    return path


def _colours(png: Path) -> tuple[int, float]:
    """Distinct colours and the share of pixels that differ from the most common one."""
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(png) as img:
        rgb = img.convert("RGB")
        counts = rgb.getcolors(maxcolors=1 << 24) or []
        total = rgb.width * rgb.height
    background = max(n for n, _ in counts)
    return len(counts), 1 - background / total


def test_report_html_renders_to_a_non_blank_screenshot(tmp_path: Path) -> None:
    chromium = _chromium()
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'mmsq.db'}")
    store.upgrade()
    insert_dataset(store)
    try:
        _, rendered = make_report(
            SqlReportSource(store, timezone="Asia/Shanghai"),
            ReportConfig(),
            devices=load_device_table(DEVICES_CSV),
            clock=FixedClock(),
            week=ReportWeek(2026, 47),
        )
    finally:
        store.close()
    html = tmp_path / "report.html"
    html.write_text(rendered.browser_html(), encoding="utf-8")
    shot = tmp_path / "report.png"
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
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,2400",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1000, 2400)
    assert len(png) > 50_000  # text, tables and charts; a blank page is a few kB
    colours, ink = _colours(shot)
    assert colours > 50  # anti-aliased text, the header band, chart colours
    assert ink > 0.05  # not a blank page
