"""Report weeks, figures and rendering from an in-memory source (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from mmsq.report_data import (
    COLUMNS,
    ComplaintCounts,
    FunnelCounts,
    NotAvailable,
    RecoveryCounts,
    ReportWeek,
)
from mmsq.report_devices import load_device_table
from mmsq.report_figures import Rate, build_weekly_report, format_duration
from mmsq.report_render import render_html, render_text, report_document, report_zip

NOW = datetime(2026, 11, 23, 1, tzinfo=UTC)


class MemorySource:
    """A ReportSource with every figure group available (what later features will wire)."""

    def __init__(self, complete: bool = True) -> None:
        self.complete = complete

    def _f(self, name: str, rows: list[tuple[object, ...]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=list(COLUMNS[name]))

    def edition_days(self, start: date, end: date) -> pd.DataFrame:
        if start == date(2026, 11, 16):
            return self._f("edition_days", [(date(2026, 11, 16), "am", 100, 90, 81)])
        return self._f("edition_days", [(date(2026, 11, 9), "am", 100, 80, 60)])

    def latency(self, start: date, end: date) -> pd.DataFrame:
        return self._f("latency", [("am", 81, 60.0, 600.0, 1200.0)])

    def by_region(self, start: date, end: date) -> pd.DataFrame:
        return self._f("by_region", [("Hefei", 100, 90, 81)])

    def by_device(self, start: date, end: date) -> pd.DataFrame:
        return self._f("by_device", [("35332510", 40, 60, 50, 45), (None, 10, 40, 40, 36)])

    def by_cause(self, start: date, end: date) -> pd.DataFrame:
        return self._f("by_cause", [("delivered", 81, 81, 45), ("not_fetched", 9, 9, 5)])

    def unknown_codes(self, start: date, end: date) -> pd.DataFrame:
        return self._f("unknown_codes", [])

    def complaints(self, start: date, end: date) -> ComplaintCounts | NotAvailable:
        if start == date(2026, 11, 16):
            return ComplaintCounts(complaints=59, subscribers=20_000)
        return ComplaintCounts(complaints=80, subscribers=20_000)

    def recovery(self, start: date, end: date) -> RecoveryCounts | NotAvailable:
        if start == date(2026, 11, 16):
            return RecoveryCounts(
                under_suspension=400, newly_suspended=50, probed=380, recovered=120
            )
        return RecoveryCounts(under_suspension=0, newly_suspended=70, probed=0, recovered=0)

    def funnel(self, start: date, end: date) -> FunnelCounts | NotAvailable:
        if not self.complete:
            return NotAvailable("not yet")
        return FunnelCounts(
            flagged=1000, remedied=900, recovered=300, holdout_flagged=100, holdout_recovered=10
        )

    def reconciliation(self, start: date, end: date) -> pd.DataFrame | NotAvailable:
        if start == date(2026, 11, 16):
            return self._f(
                "reconciliation",
                [
                    (datetime(2026, 11, 16, 2), "billing_not_content", 12),
                    (datetime(2026, 11, 17, 2), "billing_not_content", 7),
                ],
            )
        return self._f("reconciliation", [(datetime(2026, 11, 9, 2), "billing_not_content", 30)])


def test_week_labels_ranges_and_the_last_complete_week() -> None:
    w = ReportWeek.parse("2026-W47")
    assert (w.start, w.end) == (date(2026, 11, 16), date(2026, 11, 23))
    assert w.previous().label == "2026-W46"
    assert ReportWeek.parse("2027-W01").previous().label == "2026-W53"
    assert ReportWeek.last_complete(date(2026, 11, 23)).label == "2026-W47"  # a Monday
    assert ReportWeek.last_complete(date(2026, 11, 22)).label == "2026-W46"  # a Sunday
    sunday = ReportWeek.parse("2026-W47", week_start=6)
    assert (sunday.start, sunday.end) == (date(2026, 11, 15), date(2026, 11, 22))
    assert ReportWeek.last_complete(date(2026, 11, 22), week_start=6) == sunday
    for bad in ("2026-47", "2026-W54", "last week"):
        with pytest.raises(ValueError, match="ISO week"):
            ReportWeek.parse(bad)


def test_rates_without_denominator_are_na() -> None:
    assert Rate(0, 0).text == "n/a"
    assert Rate(0, 0).value is None
    assert Rate(1, 3).text == "33.3%"
    assert format_duration(None) == "n/a"
    assert format_duration(3900) == "1 h 05 min"


def test_complaints_recovery_and_holdout_uplift_when_available() -> None:
    report = build_weekly_report(
        MemorySource(), ReportWeek(2026, 47), devices=load_device_table(None), now=NOW
    )
    heads = {h.name: h for h in report.headlines}
    assert heads["Receive success rate"].value == "90.0%"  # 81 / 90
    assert heads["Receive success rate"].change == "+15.0 pp"  # 60 / 80 = 75%
    assert heads["Complaints per 10,000 subscribers"].value == "29.5"
    assert heads["Complaints per 10,000 subscribers"].change == "-10.5"
    assert heads["Complaints per 10,000 subscribers"].verdict == 1  # fewer complaints: good
    assert heads["Subscribers suspended"].value == "50"
    assert heads["Subscribers suspended"].change == "-20"
    assert heads["Recovery rate"].value == "30.0%"  # 120 of 400
    assert heads["Recovery rate"].change == "n/a"  # nobody under suspension last week
    assert report.funnel is not None
    assert not isinstance(report.funnel, NotAvailable)
    assert report.funnel.treated.text == "30.0%"
    assert report.funnel.holdout.text == "10.0%"
    assert report.funnel.uplift_pp == pytest.approx(20.0)
    low, high = report.funnel.uplift_ci_pp or (0.0, 0.0)
    assert low < 20.0 < high
    assert not isinstance(report.reconciliation, NotAvailable)
    [recon] = report.reconciliation
    assert (recon.runs, recon.total, recon.latest, recon.previous_total) == (2, 19, 7, 30)
    assert report.not_available == {}


def test_rendered_sections_show_available_figures_and_not_available_ones() -> None:
    report = build_weekly_report(
        MemorySource(complete=False),
        ReportWeek(2026, 47),
        devices=load_device_table(None),
        now=NOW,
    )
    html, text = render_html(report, []), render_text(report)
    for body in (html, text):
        assert "29.5" in body
        assert "30.0%" in body
        assert "Not available yet".lower() in body.lower()
    assert "billing not content" in html
    assert "billing_not_content" in text
    assert "<script" not in html
    doc = report_document(report)
    assert doc["not_available"] == {"funnel": "not yet"}
    assert doc["tables"]["recovery"] == [
        {
            "under_suspension": 400,
            "newly_suspended": 50,
            "probed": 380,
            "recovered": 120,
            "recovery_rate": 0.3,
        }
    ]
    assert report_zip(report)[:2] == b"PK"


def test_device_table_is_optional_and_tolerant(tmp_path: Path) -> None:
    assert load_device_table(tmp_path / "absent.csv").name("35332510").brand in ("unknown", "Nokia")
    bad = tmp_path / "devices.csv"
    bad.write_text("tac,brand,model\n35332510,Nokia,6300\nnot-a-tac,X,Y\n12345678,,Z\n")
    table = load_device_table(bad)
    assert table.name("35332510").model == "6300"
    assert table.skipped == 2
    assert table.name(None).brand == "unknown"
    assert load_device_table(None, rules_dir=tmp_path).source == str(bad)
