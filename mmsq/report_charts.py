"""The report's charts as PNG bytes (matplotlib, Agg canvas set explicitly per figure).

No pyplot: each chart is a ``Figure`` on its own ``FigureCanvasAgg``, so drawing needs no
display, touches no global backend state and is safe in the daemon's worker threads.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmsq.report_figures import WeeklyReport, day_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Chart", "render_charts"]

_WIDTH_IN = 6.4
_DPI = 150  # drawn at 2x and shown 640 px wide: sharp on high-density screens
_GOOD = "#1a7f37"
_BAD = "#c62828"
_MAIN = "#1f5fa8"
_MUTED = "#9aa7b4"


@dataclass(frozen=True)
class Chart:
    """One inline image: its Content-ID (without brackets), alt text and PNG bytes."""

    cid: str
    title: str
    alt: str
    png: bytes


def _figure(height_in: float) -> Figure:
    # matplotlib is imported when a chart is drawn, not when mmsq starts (0.3 s).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A region or handset name in a script the font lacks is drawn as boxes, not fatal.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _style(ax: object) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x" if ax.get_xlabel() else "y", color="#e3e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _pct(v: float | None) -> float:
    return math.nan if v is None else v * 100


def _daily(report: WeeklyReport, cid: str) -> Chart | None:
    if not any(d.final for d in report.days) and not any(
        d.previous and d.previous.den for d in report.days
    ):
        return None
    fig = _figure(2.6)
    ax = fig.add_subplot()
    labels = [day_label(d.key) for d in report.days]
    x = list(range(len(labels)))
    now = [_pct(d.rate.value) for d in report.days]
    before = [_pct(d.previous.value if d.previous else None) for d in report.days]
    ax.plot(x, before, marker="o", color=_MUTED, linewidth=1.5, label=report.previous_week.label)
    ax.plot(x, now, marker="o", color=_MAIN, linewidth=2.2, label=report.week.label)
    ax.set_xticks(x, labels)
    ax.set_ylabel("delivered / final, %", fontsize=8)
    values = [v for v in now + before if not math.isnan(v)]
    low = max(0.0, math.floor(min(values) / 5) * 5 - 5) if values else 0.0
    ax.set_ylim(low, 100)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    _style(ax)
    return Chart(
        cid,
        "Receive success rate by day",
        "Line chart of the daily receive success rate, this week against the previous week",
        _png(fig),
    )


def _causes(report: WeeklyReport, cid: str) -> Chart | None:
    rows = [c for c in report.causes if c.cause != "delivered" and c.final > 0][:8]
    if not rows:
        return None
    fig = _figure(0.45 + 0.28 * len(rows))
    ax = fig.add_subplot()
    rows.reverse()
    ax.barh([c.cause.replace("_", " ") for c in rows], [c.final for c in rows], color=_BAD)
    ax.set_xlabel("final failed outcomes", fontsize=8)
    for i, c in enumerate(rows):
        ax.text(c.final, i, f" {c.final:,}", va="center", fontsize=7)
    _style(ax)
    return Chart(
        cid,
        "Why deliveries failed",
        "Bar chart of final failed outcomes per cause class",
        _png(fig),
    )


def _latency(report: WeeklyReport, cid: str) -> Chart | None:
    rows = [e for e in report.editions if e.latency.p90_s is not None]
    if not rows:
        return None
    fig = _figure(0.6 + 0.3 * len(rows))
    ax = fig.add_subplot()
    rows.reverse()
    y = list(range(len(rows)))
    p50 = [(e.latency.p50_s or 0) / 60 for e in rows]
    p90 = [(e.latency.p90_s or 0) / 60 for e in rows]
    colors = [_BAD if e.slow else _MAIN for e in rows]
    ax.barh(y, p90, color=colors, alpha=0.35, label="p90")
    ax.barh(y, p50, color=colors, label="p50")
    ax.axvline(report.p90_limit_s / 60, color=_BAD, linestyle="--", linewidth=1)
    ax.text(
        report.p90_limit_s / 60,
        len(rows) - 0.4,
        " p90 limit",
        color=_BAD,
        fontsize=7,
        va="bottom",
    )
    ax.set_yticks(y, [e.edition for e in rows], fontsize=7)
    ax.set_xlabel("minutes from submit to delivered", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    _style(ax)
    return Chart(
        cid,
        "Delivery latency per edition",
        "Bar chart of median and 90th percentile delivery latency per edition",
        _png(fig),
    )


def _regions(report: WeeklyReport, cid: str) -> Chart | None:
    rows = [r for r in report.regions[: report.top_n] if r.rate.value is not None]
    if not rows:
        return None
    rows.sort(key=lambda r: r.rate.value or 0.0, reverse=True)
    fig = _figure(0.45 + 0.28 * len(rows))
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    ax.barh(y, [_pct(r.rate.value) for r in rows], color=_MAIN)
    prev = [_pct(r.previous.value if r.previous else None) for r in rows]
    ax.scatter(prev, y, color="#222222", marker="|", s=120, label=report.previous_week.label)
    ax.set_yticks(y, [r.key for r in rows], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("receive success rate, % (| = previous week)", fontsize=8)
    _style(ax)
    return Chart(
        cid,
        "Receive success rate by region",
        "Bar chart of the receive success rate per region with the previous week marked",
        _png(fig),
    )


def render_charts(report: WeeklyReport, domain: str = "mmsq.report") -> list[Chart]:
    """Every chart the report has data for; Content-IDs are unique per week and chart."""
    makers = {"daily": _daily, "causes": _causes, "latency": _latency, "regions": _regions}
    charts = []
    for name, make in makers.items():
        chart = make(report, f"{name}.{report.week.label.lower()}@{domain}")
        if chart is not None:
            charts.append(chart)
    return charts
