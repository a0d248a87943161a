"""The weekly report's figures, computed from a ``ReportSource`` for a week and the one before.

Everything here is arithmetic on the small frames the source returns (grouped in the
database). A rate with a zero denominator has no value and is shown as "n/a", never as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

from mmsq.report_data import (
    ComplaintCounts,
    FunnelCounts,
    NotAvailable,
    RecoveryCounts,
    ReportSource,
    ReportWeek,
)
from mmsq.report_devices import DeviceTable

__all__ = [
    "CauseRow",
    "ComplaintFigures",
    "EditionRow",
    "FunnelFigures",
    "Headline",
    "Latency",
    "ModelRow",
    "OutcomeRow",
    "Rate",
    "ReconciliationRow",
    "RecoveryFigures",
    "TacRow",
    "UnknownCodeRow",
    "WeeklyReport",
    "build_weekly_report",
    "day_label",
    "format_duration",
    "format_pp",
]

NA = "n/a"
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Rate:
    """``num`` out of ``den``; no value when ``den`` is 0."""

    num: int
    den: int

    @property
    def value(self) -> float | None:
        return self.num / self.den if self.den else None

    @property
    def text(self) -> str:
        v = self.value
        return NA if v is None else f"{v * 100:.1f}%"


def _pp(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return (current - previous) * 100


def format_pp(change: float | None) -> str:
    """A change in percentage points: ``+1.2 pp``, ``-0.4 pp``, ``n/a``."""
    if change is None:
        return NA
    return f"{change:+.1f} pp"


def _format_delta(change: float | None, digits: int = 0) -> str:
    if change is None:
        return NA
    return f"{change:+,.{digits}f}"


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``12 min``, ``1 h 05 min``; ``n/a`` without a value."""
    if seconds is None or math.isnan(seconds):
        return NA
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """Delivery outcomes for one key (a day, an edition, a region), with last week's rate."""

    key: str
    attempts: int
    final: int
    delivered: int
    previous: Rate | None = None

    @property
    def rate(self) -> Rate:
        return Rate(self.delivered, self.final)

    @property
    def failed(self) -> int:
        return self.final - self.delivered

    @property
    def change_pp(self) -> float | None:
        return _pp(self.rate.value, self.previous.value if self.previous else None)


@dataclass(frozen=True, slots=True)
class Latency:
    """Submit-to-delivered latency of one edition, in seconds."""

    count: int
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None


@dataclass(frozen=True, slots=True)
class EditionRow:
    edition: str
    days: str
    outcome: OutcomeRow
    latency: Latency
    slow: bool


def _handset(brand: str, model: str) -> str:
    return brand if model in ("", "unknown") else f"{brand} {model}"


@dataclass(frozen=True, slots=True)
class TacRow:
    tac: str | None
    brand: str
    model: str
    subscribers: int
    outcome: OutcomeRow

    @property
    def handset(self) -> str:
        return _handset(self.brand, self.model)


@dataclass(frozen=True, slots=True)
class ModelRow:
    brand: str
    model: str
    tacs: int
    subscribers: int
    outcome: OutcomeRow

    @property
    def handset(self) -> str:
        return _handset(self.brand, self.model)


@dataclass(frozen=True, slots=True)
class CauseRow:
    cause: str
    attempts: int
    final: int
    subscribers: int
    #: Final outcomes of this cause among all final failures (None for ``delivered``).
    share_of_failures: Rate | None


@dataclass(frozen=True, slots=True)
class UnknownCodeRow:
    namespace: str
    code: str
    events: int
    total: int
    first_seen: datetime | None
    new: bool


Trend = Literal["up_good", "up_bad"]


@dataclass(frozen=True, slots=True)
class Headline:
    """One headline figure with its change from the previous week."""

    name: str
    value: str
    change: str
    #: +1 good news, -1 bad news, 0 no change, None unknown.
    verdict: int | None
    basis: str
    available: bool = True


@dataclass(frozen=True, slots=True)
class ComplaintFigures:
    current: ComplaintCounts
    previous: ComplaintCounts | NotAvailable

    @staticmethod
    def per_10k(c: ComplaintCounts) -> float | None:
        return c.complaints / c.subscribers * 10_000 if c.subscribers else None

    @property
    def value(self) -> float | None:
        return self.per_10k(self.current)

    @property
    def change(self) -> float | None:
        if isinstance(self.previous, NotAvailable):
            return None
        prev = self.per_10k(self.previous)
        return None if self.value is None or prev is None else self.value - prev


@dataclass(frozen=True, slots=True)
class RecoveryFigures:
    current: RecoveryCounts
    previous: RecoveryCounts | NotAvailable

    @property
    def rate(self) -> Rate:
        return Rate(self.current.recovered, self.current.under_suspension)

    @property
    def previous_rate(self) -> Rate | None:
        if isinstance(self.previous, NotAvailable):
            return None
        return Rate(self.previous.recovered, self.previous.under_suspension)


@dataclass(frozen=True, slots=True)
class FunnelFigures:
    counts: FunnelCounts

    @property
    def remedied(self) -> Rate:
        return Rate(self.counts.remedied, self.counts.flagged)

    @property
    def treated(self) -> Rate:
        return Rate(self.counts.recovered, self.counts.flagged)

    @property
    def holdout(self) -> Rate | None:
        """None when no holdout group is recorded."""
        c = self.counts
        if c.holdout_flagged is None or c.holdout_recovered is None:
            return None
        return Rate(c.holdout_recovered, c.holdout_flagged)

    @property
    def uplift_pp(self) -> float | None:
        holdout = self.holdout
        return None if holdout is None else _pp(self.treated.value, holdout.value)

    @property
    def uplift_ci_pp(self) -> tuple[float, float] | None:
        """95% interval of the uplift (normal approximation of a difference of proportions)."""
        holdout = self.holdout
        if holdout is None:
            return None
        p1, p2 = self.treated.value, holdout.value
        if p1 is None or p2 is None:
            return None
        se = math.sqrt(p1 * (1 - p1) / self.treated.den + p2 * (1 - p2) / holdout.den)
        diff = (p1 - p2) * 100
        return diff - _Z95 * se * 100, diff + _Z95 * se * 100


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    diff_class: str
    runs: int
    total: int
    latest: int
    previous_total: int | None


@dataclass(frozen=True)
class WeeklyReport:
    """Every figure of one weekly report; rendering only formats these."""

    week: ReportWeek
    previous_week: ReportWeek
    generated_at: datetime
    p90_limit_s: float
    #: Rows shown in the email's ranked tables (the attachment has them all).
    top_n: int
    totals: OutcomeRow
    headlines: tuple[Headline, ...]
    days: tuple[OutcomeRow, ...]
    editions: tuple[EditionRow, ...]
    regions: tuple[OutcomeRow, ...]
    tacs: tuple[TacRow, ...]
    models: tuple[ModelRow, ...]
    causes: tuple[CauseRow, ...]
    subscribers: int
    device_match: Rate
    imei_seen: Rate
    device_table: str
    unknown_codes: tuple[UnknownCodeRow, ...]
    complaints: ComplaintFigures | NotAvailable
    recovery: RecoveryFigures | NotAvailable
    funnel: FunnelFigures | NotAvailable
    reconciliation: tuple[ReconciliationRow, ...] | NotAvailable
    warnings: tuple[str, ...] = field(default=())

    @property
    def has_data(self) -> bool:
        return self.totals.attempts > 0

    @property
    def not_available(self) -> dict[str, str]:
        sections: dict[str, Any] = {
            "complaints": self.complaints,
            "recovery": self.recovery,
            "funnel": self.funnel,
            "reconciliation": self.reconciliation,
        }
        return {k: v.reason for k, v in sections.items() if isinstance(v, NotAvailable)}


# -- building --------------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    return v is None or bool(pd.isna(v))


def _int(v: Any) -> int:
    return 0 if _missing(v) else int(v)


def _opt_float(v: Any) -> float | None:
    return None if _missing(v) else float(v)


def _sum(frame: pd.DataFrame, col: str) -> int:
    return int(frame[col].sum()) if not frame.empty else 0


def _outcomes(frame: pd.DataFrame, key: str) -> dict[str, tuple[int, int, int]]:
    """key -> (attempts, final, delivered), summed over duplicate keys."""
    if frame.empty:
        return {}
    keys = frame[key].astype(object).where(frame[key].notna(), None)
    grouped = (
        frame.assign(_k=keys.map(lambda v: "(none)" if v is None else str(v)))
        .groupby("_k", sort=False)[["attempts", "final", "delivered"]]
        .sum()
    )
    return {
        str(k): (int(r["attempts"]), int(r["final"]), int(r["delivered"]))
        for k, r in grouped.iterrows()
    }


def _failing_first(rows: list[Any], outcome: Any) -> list[Any]:
    """Most failed final outcomes first; then worst rate; then name for a stable order."""
    return sorted(
        rows,
        key=lambda r: (
            -outcome(r).failed,
            outcome(r).rate.value if outcome(r).rate.value is not None else 2.0,
            outcome(r).key,
        ),
    )


def _days(week: ReportWeek, cur: pd.DataFrame, prev: pd.DataFrame) -> tuple[OutcomeRow, ...]:
    now = _outcomes(cur, "day")
    before = _outcomes(prev, "day")
    rows = []
    for day, prev_day in zip(week.days, week.previous().days, strict=True):
        a, f, d = now.get(str(day), (0, 0, 0))
        pa = before.get(str(prev_day))
        rows.append(OutcomeRow(str(day), a, f, d, Rate(pa[2], pa[1]) if pa else Rate(0, 0)))
    return tuple(rows)


def _latencies(frame: pd.DataFrame) -> dict[str, Latency]:
    out: dict[str, Latency] = {}
    for r in frame.itertuples(index=False):
        key = "(none)" if _missing(r.edition) else str(r.edition)
        out[key] = Latency(
            _int(r.delivered), _opt_float(r.p50_s), _opt_float(r.p90_s), _opt_float(r.p99_s)
        )
    return out


def _editions(
    cur: pd.DataFrame, latencies: pd.DataFrame, limit: float
) -> tuple[tuple[EditionRow, ...], list[str]]:
    lat = _latencies(latencies)
    rows: list[EditionRow] = []
    warnings: list[str] = []
    if cur.empty:
        return (), warnings
    frame = cur.assign(
        edition=cur["edition"].astype(object).where(cur["edition"].notna(), "(none)")
    )
    for edition, group in frame.groupby("edition", sort=False):
        days = sorted({str(d) for d in group["day"]})
        outcome = OutcomeRow(
            str(edition),
            _sum(group, "attempts"),
            _sum(group, "final"),
            _sum(group, "delivered"),
        )
        latency = lat.get(str(edition), Latency(0, None, None, None))
        slow = latency.p90_s is not None and latency.p90_s > limit
        if slow:
            warnings.append(
                f"Edition {edition}: p90 delivery latency {format_duration(latency.p90_s)} "
                f"exceeds the limit of {format_duration(limit)}: its sending ports may be "
                "too slow for the subscriber base."
            )
        span = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        rows.append(EditionRow(str(edition), span, outcome, latency, slow))
    rows.sort(key=lambda r: (r.days, r.edition))
    return tuple(rows), warnings


def _regions(cur: pd.DataFrame, prev: pd.DataFrame) -> tuple[OutcomeRow, ...]:
    before = _outcomes(prev, "region")
    rows = []
    for key, (a, f, d) in _outcomes(cur, "region").items():
        pa = before.get(key)
        rows.append(OutcomeRow(key, a, f, d, Rate(pa[2], pa[1]) if pa else Rate(0, 0)))
    return tuple(_failing_first(rows, lambda r: r))


def _devices(
    frame: pd.DataFrame, devices: DeviceTable
) -> tuple[tuple[TacRow, ...], tuple[ModelRow, ...], int, Rate, Rate]:
    tacs: list[TacRow] = []
    models: dict[tuple[str, str], list[TacRow]] = {}
    subscribers = known = with_imei = 0
    for r in frame.itertuples(index=False):
        tac = None if _missing(r.tac) else str(r.tac)
        name = devices.name(tac)
        n = _int(r.subscribers)
        subscribers += n
        if tac is not None:
            with_imei += n
        if devices.knows(tac):
            known += n
        row = TacRow(
            tac,
            name.brand,
            name.model,
            n,
            OutcomeRow(tac or "(no IMEI)", _int(r.attempts), _int(r.final), _int(r.delivered)),
        )
        tacs.append(row)
        models.setdefault((name.brand, name.model), []).append(row)
    model_rows = [
        ModelRow(
            brand,
            model,
            sum(1 for t in group if t.tac is not None),
            sum(t.subscribers for t in group),
            OutcomeRow(
                f"{brand} {model}",
                sum(t.outcome.attempts for t in group),
                sum(t.outcome.final for t in group),
                sum(t.outcome.delivered for t in group),
            ),
        )
        for (brand, model), group in models.items()
    ]
    top_tacs = _failing_first(tacs, lambda r: r.outcome)
    top_models = _failing_first(model_rows, lambda r: r.outcome)
    return (
        tuple(top_tacs),
        tuple(top_models),
        subscribers,
        Rate(known, subscribers),
        Rate(with_imei, subscribers),
    )


def _causes(frame: pd.DataFrame) -> tuple[CauseRow, ...]:
    failures = int(frame.loc[frame["cause"] != "delivered", "final"].sum()) if len(frame) else 0
    rows = [
        CauseRow(
            str(r.cause),
            _int(r.attempts),
            _int(r.final),
            _int(r.subscribers),
            None if r.cause == "delivered" else Rate(_int(r.final), failures),
        )
        for r in frame.itertuples(index=False)
    ]
    rows.sort(key=lambda c: (c.cause == "delivered", -c.final, -c.attempts, c.cause))
    return tuple(rows)


def _unknown(frame: pd.DataFrame, week: ReportWeek) -> tuple[UnknownCodeRow, ...]:
    rows = []
    for r in frame.itertuples(index=False):
        seen: Any = r.first_seen
        first = None if _missing(seen) else pd.Timestamp(seen).to_pydatetime()
        new = first is not None and first.date() >= week.start
        rows.append(
            UnknownCodeRow(str(r.namespace), str(r.code), _int(r.events), _int(r.total), first, new)
        )
    rows.sort(key=lambda u: (-u.events, u.namespace, u.code))
    return tuple(rows)


def _reconciliation(
    cur: pd.DataFrame | NotAvailable, prev: pd.DataFrame | NotAvailable
) -> tuple[ReconciliationRow, ...] | NotAvailable:
    if isinstance(cur, NotAvailable):
        return cur
    before: dict[str, int] = {}
    if not isinstance(prev, NotAvailable) and not prev.empty:
        before = {str(k): int(v) for k, v in prev.groupby("diff_class")["count"].sum().items()}
    rows = []
    if not cur.empty:
        for cls, group in cur.sort_values("run_at").groupby("diff_class", sort=True):
            rows.append(
                ReconciliationRow(
                    str(cls),
                    int(group["run_at"].nunique()),
                    int(group["count"].sum()),
                    int(group["count"].iloc[-1]),
                    before.get(str(cls)),
                )
            )
    return tuple(rows)


def _verdict(change: float | None, up: Trend) -> int | None:
    if change is None:
        return None
    if abs(change) < 1e-9:
        return 0
    good = change > 0 if up == "up_good" else change < 0
    return 1 if good else -1


def _headlines(
    totals: OutcomeRow,
    complaints: ComplaintFigures | NotAvailable,
    recovery: RecoveryFigures | NotAvailable,
) -> tuple[Headline, ...]:
    out = [
        Headline(
            "Receive success rate",
            totals.rate.text,
            format_pp(totals.change_pp),
            _verdict(totals.change_pp, "up_good"),
            f"{totals.delivered:,} delivered of {totals.final:,} final outcomes",
        )
    ]
    if isinstance(complaints, NotAvailable):
        out.append(Headline("Complaints per 10,000 subscribers", NA, NA, None, "", False))
    else:
        v = complaints.value
        out.append(
            Headline(
                "Complaints per 10,000 subscribers",
                NA if v is None else f"{v:.1f}",
                _format_delta(complaints.change, 1),
                _verdict(complaints.change, "up_bad"),
                f"{complaints.current.complaints:,} complaints, "
                f"{complaints.current.subscribers:,} subscribers "
                f"({complaints.current.basis})",
            )
        )
    names = ("Subscribers suspended", "Subscribers recovered", "Recovery rate")
    if isinstance(recovery, NotAvailable):
        out.extend(Headline(n, NA, NA, None, "", False) for n in names)
        return tuple(out)
    cur = recovery.current
    prev = None if isinstance(recovery.previous, NotAvailable) else recovery.previous
    d_susp = None if prev is None else float(cur.newly_suspended - prev.newly_suspended)
    d_rec = None if prev is None else float(cur.recovered - prev.recovered)
    prev_rate = recovery.previous_rate
    d_rate = _pp(recovery.rate.value, prev_rate.value if prev_rate else None)
    out.extend(
        [
            Headline(
                names[0],
                f"{cur.newly_suspended:,}",
                _format_delta(d_susp),
                _verdict(d_susp, "up_bad"),
                f"newly suspended; {cur.under_suspension:,} under suspension in the week",
            ),
            Headline(
                names[1],
                f"{cur.recovered:,}",
                _format_delta(d_rec),
                _verdict(d_rec, "up_good"),
                f"delivery resumed after a probe; {cur.probed:,} probed",
            ),
            Headline(
                names[2],
                recovery.rate.text,
                format_pp(d_rate),
                _verdict(d_rate, "up_good"),
                f"{cur.recovered:,} recovered of {cur.under_suspension:,} under suspension",
            ),
        ]
    )
    return tuple(out)


def build_weekly_report(
    source: ReportSource,
    week: ReportWeek,
    *,
    devices: DeviceTable,
    now: datetime,
    p90_limit_s: float = 3600.0,
    top_n: int = 10,
) -> WeeklyReport:
    """Read the week's and the previous week's figures from ``source`` and derive the report."""
    prev = week.previous()
    s, e, ps, pe = week.start, week.end, prev.start, prev.end
    ed_cur, ed_prev = source.edition_days(s, e), source.edition_days(ps, pe)
    totals = OutcomeRow(
        week.label,
        _sum(ed_cur, "attempts"),
        _sum(ed_cur, "final"),
        _sum(ed_cur, "delivered"),
        Rate(_sum(ed_prev, "delivered"), _sum(ed_prev, "final")),
    )
    editions, warnings = _editions(ed_cur, source.latency(s, e), p90_limit_s)
    tacs, models, subscribers, match, imei = _devices(source.by_device(s, e), devices)

    complaints_now = source.complaints(s, e)
    complaints: ComplaintFigures | NotAvailable = (
        complaints_now
        if isinstance(complaints_now, NotAvailable)
        else ComplaintFigures(complaints_now, source.complaints(ps, pe))
    )
    recovery_now = source.recovery(s, e)
    recovery: RecoveryFigures | NotAvailable = (
        recovery_now
        if isinstance(recovery_now, NotAvailable)
        else RecoveryFigures(recovery_now, source.recovery(ps, pe))
    )
    funnel_now = source.funnel(s, e)
    funnel = funnel_now if isinstance(funnel_now, NotAvailable) else FunnelFigures(funnel_now)
    recon_now = source.reconciliation(s, e)
    recon = _reconciliation(
        recon_now,
        recon_now if isinstance(recon_now, NotAvailable) else source.reconciliation(ps, pe),
    )
    if not totals.attempts:
        warnings.insert(0, f"No delivery events were recorded in {week.label}.")
    return WeeklyReport(
        week=week,
        previous_week=prev,
        generated_at=now,
        p90_limit_s=p90_limit_s,
        top_n=top_n,
        totals=totals,
        headlines=_headlines(totals, complaints, recovery),
        days=_days(week, ed_cur, ed_prev),
        editions=editions,
        regions=_regions(source.by_region(s, e), source.by_region(ps, pe)),
        tacs=tacs,
        models=models,
        causes=_causes(source.by_cause(s, e)),
        subscribers=subscribers,
        device_match=match,
        imei_seen=imei,
        # The file name only: a report names no server paths.
        device_table=devices.source.replace("\\", "/").rsplit("/", 1)[-1],
        unknown_codes=_unknown(source.unknown_codes(s, e), week),
        complaints=complaints,
        recovery=recovery,
        funnel=funnel,
        reconciliation=recon,
        warnings=tuple(warnings),
    )


def day_label(day: str) -> str:
    """``2026-11-16`` -> ``Mon 16 Nov``."""
    return date.fromisoformat(day).strftime("%a %d %b")
