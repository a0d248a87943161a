"""Turns a ``WeeklyReport`` into what people read: HTML and text, the CSV attachment, the email.

The email is ``multipart/mixed``: a ``multipart/alternative`` (plain text, then a
``multipart/related`` HTML part with the charts as PNG images referenced by Content-ID),
and one ZIP attachment holding every detail table as a CSV file.

Why one ZIP rather than a CSV per table: a dozen loose attachments are clumsy to open and to
forward in most mail clients, a ZIP keeps the set together under the week's name and shrinks
it several times. CSVs are UTF-8 with a byte order mark so that spreadsheet programs show
region and handset names in any script correctly.
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mmsq.report_charts import Chart, render_charts
from mmsq.report_data import NotAvailable
from mmsq.report_figures import (
    NA,
    Rate,
    WeeklyReport,
    day_label,
    format_duration,
    format_pp,
)

__all__ = [
    "RenderedReport",
    "attachment_name",
    "build_message",
    "render_html",
    "render_report",
    "render_text",
    "report_document",
    "report_tables",
    "report_zip",
]

_TEMPLATES = Path(__file__).parent / "templates"

Table = tuple[list[str], list[list[Any]]]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.tests["na"] = lambda v: isinstance(v, NotAvailable)
    env.globals.update(
        num=lambda n: f"{n:,}",
        pp=format_pp,
        dur=format_duration,
        day_label=day_label,
        verdict=lambda c: None if c is None else (0 if abs(c) < 1e-9 else (1 if c > 0 else -1)),
        verdict_color=lambda v: {1: "#1a7f37", -1: "#c62828"}.get(v, "#57606a"),
        per10k=lambda v: NA if v is None else f"{v:.1f}",
        signed=lambda v: NA if v is None else f"{v:+.1f}",
    )
    return env


def _context(report: WeeklyReport) -> dict[str, Any]:
    return {
        "r": report,
        "last_day": report.week.end - timedelta(days=1),
        "generated": report.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "attachment_name": attachment_name(report),
    }


def attachment_name(report: WeeklyReport) -> str:
    return f"mmsq-report-{report.week.label}.zip"


def render_html(
    report: WeeklyReport, charts: list[Chart], images: Literal["cid", "data"] = "cid"
) -> str:
    """The HTML body. ``cid``: images referenced by Content-ID (the email); ``data``: embedded
    as data: URIs, for a file opened in a browser."""

    def image_src(chart: Chart) -> str:
        if images == "cid":
            return f"cid:{chart.cid}"
        return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")

    by_name = {c.cid.split(".", 1)[0]: c for c in charts}
    named = {n: by_name.get(n) for n in ("daily", "causes", "latency", "regions")}
    template = _environment().get_template("report.html.j2")
    return template.render(**_context(report), charts=named, image_src=image_src)


def render_text(report: WeeklyReport) -> str:
    """The plain-text alternative (also what ``mmsq report`` prints)."""
    return _environment().get_template("report.txt.j2").render(**_context(report))


# -- detail tables ---------------------------------------------------------------------------


def _rate(r: Rate | None) -> float | None:
    v = None if r is None else r.value
    return None if v is None else round(v, 6)


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def report_tables(report: WeeklyReport) -> dict[str, Table]:
    """Every detail table, full length (the email shows the top rows), as header + rows."""
    t: dict[str, Table] = {}
    t["summary"] = (
        ["figure", "value", "change_vs_previous_week", "basis"],
        [[h.name, h.value, h.change, h.basis] for h in report.headlines]
        + [
            ["Active subscribers", report.subscribers, "", "distinct subscribers with a report"],
            ["Device match rate", report.device_match.text, "", report.device_table],
            ["IMEI on record", report.imei_seen.text, "", ""],
        ],
    )
    outcome_cols = ["attempts", "final", "delivered", "failed", "success_rate"]
    t["days"] = (
        ["day", *outcome_cols, "previous_week_rate", "change_pp"],
        [
            [
                d.key,
                d.attempts,
                d.final,
                d.delivered,
                d.failed,
                _rate(d.rate),
                _rate(d.previous),
                _round(d.change_pp),
            ]
            for d in report.days
        ],
    )
    t["editions"] = (
        [
            "edition",
            "days",
            *outcome_cols,
            "latency_count",
            "p50_s",
            "p90_s",
            "p99_s",
            "p90_over_limit",
        ],
        [
            [
                e.edition,
                e.days,
                e.outcome.attempts,
                e.outcome.final,
                e.outcome.delivered,
                e.outcome.failed,
                _rate(e.outcome.rate),
                e.latency.count,
                _round(e.latency.p50_s, 1),
                _round(e.latency.p90_s, 1),
                _round(e.latency.p99_s, 1),
                e.slow,
            ]
            for e in report.editions
        ],
    )
    t["regions"] = (
        ["region", *outcome_cols, "previous_week_rate", "change_pp"],
        [
            [
                g.key,
                g.attempts,
                g.final,
                g.delivered,
                g.failed,
                _rate(g.rate),
                _rate(g.previous),
                _round(g.change_pp),
            ]
            for g in report.regions
        ],
    )
    t["handset_models"] = (
        ["brand", "model", "tacs", "subscribers", *outcome_cols],
        [
            [
                m.brand,
                m.model,
                m.tacs,
                m.subscribers,
                m.outcome.attempts,
                m.outcome.final,
                m.outcome.delivered,
                m.outcome.failed,
                _rate(m.outcome.rate),
            ]
            for m in report.models
        ],
    )
    t["handset_tacs"] = (
        ["tac", "brand", "model", "subscribers", *outcome_cols],
        [
            [
                x.tac or "",
                x.brand,
                x.model,
                x.subscribers,
                x.outcome.attempts,
                x.outcome.final,
                x.outcome.delivered,
                x.outcome.failed,
                _rate(x.outcome.rate),
            ]
            for x in report.tacs
        ],
    )
    t["causes"] = (
        ["cause", "reports", "final", "subscribers", "share_of_failures"],
        [
            [c.cause, c.attempts, c.final, c.subscribers, _rate(c.share_of_failures)]
            for c in report.causes
        ],
    )
    t["unknown_codes"] = (
        ["namespace", "code", "events_this_week", "total_since_first_seen", "first_seen", "new"],
        [
            [
                u.namespace,
                u.code,
                u.events,
                u.total,
                u.first_seen.isoformat() if u.first_seen else None,
                u.new,
            ]
            for u in report.unknown_codes
        ],
    )
    if not isinstance(report.recovery, NotAvailable):
        c = report.recovery.current
        t["recovery"] = (
            ["under_suspension", "newly_suspended", "probed", "recovered", "recovery_rate"],
            [
                [
                    c.under_suspension,
                    c.newly_suspended,
                    c.probed,
                    c.recovered,
                    _rate(report.recovery.rate),
                ]
            ],
        )
    if not isinstance(report.funnel, NotAvailable):
        f = report.funnel
        ci = f.uplift_ci_pp
        t["funnel"] = (
            [
                "group",
                "flagged",
                "remedied",
                "recovered",
                "recovery_rate",
                "uplift_pp",
                "uplift_ci95_low_pp",
                "uplift_ci95_high_pp",
            ],
            [
                [
                    "remedy",
                    f.counts.flagged,
                    f.counts.remedied,
                    f.counts.recovered,
                    _rate(f.treated),
                    _round(f.uplift_pp),
                    _round(ci[0]) if ci else None,
                    _round(ci[1]) if ci else None,
                ],
                [
                    "holdout",
                    f.counts.holdout_flagged,
                    None if f.holdout is None else 0,
                    f.counts.holdout_recovered,
                    None if f.holdout is None else _rate(f.holdout),
                    None,
                    None,
                    None,
                ],
            ],
        )
    if not isinstance(report.complaints, NotAvailable):
        cc = report.complaints
        t["complaints"] = (
            ["complaints", "subscribers", "per_10000", "change_vs_previous_week", "basis"],
            [
                [
                    cc.current.complaints,
                    cc.current.subscribers,
                    _round(cc.value, 3),
                    _round(cc.change, 3),
                    cc.current.basis,
                ]
            ],
        )
    if not isinstance(report.reconciliation, NotAvailable):
        t["reconciliation"] = (
            ["diff_class", "runs", "latest_run", "week_total", "previous_week_total"],
            [
                [x.diff_class, x.runs, x.latest, x.total, x.previous_total]
                for x in report.reconciliation
            ],
        )
    return t


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def report_zip(report: WeeklyReport) -> bytes:
    """The attachment: one CSV per detail table and a README naming them."""
    tables = report_tables(report)
    stamp = report.week.start
    when = (stamp.year, stamp.month, stamp.day, 0, 0, 0)
    readme = [
        f"mmsq weekly report {report.week.label}: detail tables (CSV, UTF-8 with BOM).",
        "Rates are fractions (0.84 = 84%); an empty cell means not applicable (no final",
        "outcome to divide by). Changes are in percentage points against the previous week.",
        "",
        *(f"{name}.csv" for name in tables),
    ]
    if report.not_available:
        readme += ["", "Not available yet:"]
        readme += [f"  {k}: {v}" for k, v in report.not_available.items()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("README.txt", when), "\r\n".join(readme) + "\r\n")
        for name, (header, rows) in tables.items():
            info = zipfile.ZipInfo(f"{name}.csv", when)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, _csv(header, rows))
    return buf.getvalue()


def report_document(report: WeeklyReport) -> dict[str, Any]:
    """The report as one JSON-ready document (``mmsq report --json``)."""

    def clean(v: Any) -> Any:
        if isinstance(v, (date, datetime)):
            return v.isoformat()
        return v

    return {
        "week": report.week.label,
        "start": report.week.start.isoformat(),
        "end": (report.week.end - timedelta(days=1)).isoformat(),
        "previous_week": report.previous_week.label,
        "generated_at": report.generated_at.isoformat(),
        "success_rate": _rate(report.totals.rate),
        "previous_success_rate": _rate(report.totals.previous),
        "headlines": [
            {
                "name": h.name,
                "value": h.value,
                "change": h.change,
                "basis": h.basis,
                "available": h.available,
            }
            for h in report.headlines
        ],
        "warnings": list(report.warnings),
        "not_available": report.not_available,
        "tables": {
            name: [dict(zip(header, map(clean, row), strict=True)) for row in rows]
            for name, (header, rows) in report_tables(report).items()
        },
    }


# -- the email -------------------------------------------------------------------------------


def subject_line(report: WeeklyReport) -> str:
    # Short enough (under 78 characters with "Subject: ") never to be folded.
    return (
        f"MMS delivery {report.week.label}: success {report.totals.rate.text} "
        f"({format_pp(report.totals.change_pp)} vs last week)"
    )


class RenderedReport:
    """Everything rendered once: HTML (cid and data variants), text, charts, attachment."""

    def __init__(self, report: WeeklyReport, domain: str = "mmsq.report") -> None:
        self.report = report
        self.charts = render_charts(report, domain)
        self.html = render_html(report, self.charts, "cid")
        self.text = render_text(report)
        self.attachment = report_zip(report)
        self.subject = subject_line(report)

    def browser_html(self) -> str:
        """The HTML with images embedded, for a file opened in a browser."""
        return render_html(self.report, self.charts, "data")


def render_report(report: WeeklyReport, domain: str = "mmsq.report") -> RenderedReport:
    return RenderedReport(report, domain)


def build_message(
    rendered: RenderedReport,
    *,
    sender: str,
    recipients: tuple[str, ...] | list[str],
    now: datetime,
) -> EmailMessage:
    """The MIME message: text and HTML alternatives, inline charts, the ZIP attachment."""
    domain = sender.rpartition("@")[2] or "mmsq.report"
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("mmsq-report", domain=domain)
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    for chart in rendered.charts:
        html_part.add_related(
            chart.png,
            "image",
            "png",
            cid=f"<{chart.cid}>",
            disposition="inline",
            filename=f"{chart.cid.split('@', 1)[0]}.png",
        )
    msg.add_attachment(
        rendered.attachment,
        maintype="application",
        subtype="zip",
        filename=attachment_name(rendered.report),
    )
    return msg
