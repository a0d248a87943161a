"""What the weekly report reads: the report week and the ``ReportSource`` port.

The port has one method per figure group. Each returns a plain pandas frame with the columns
its docstring names, a small frozen dataclass, or ``NotAvailable`` when the data behind it is
not collected by this installation (yet). The report shows "not available yet" for those
sections and never invents a number. Wiring a new source is one method: return the documented
frame or dataclass instead of ``NotAvailable``.

Day ranges are half-open: ``start`` is the first local day of the week, ``end`` the day after
its last one. Days are the operator-local days of submission stored at ingest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import pandas as pd

__all__ = [
    "COLUMNS",
    "ComplaintCounts",
    "FunnelCounts",
    "NotAvailable",
    "RecoveryCounts",
    "ReportSource",
    "ReportWeek",
]

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$", re.IGNORECASE)

#: The columns of every frame the port returns, by method name.
COLUMNS: dict[str, tuple[str, ...]] = {
    "edition_days": ("day", "edition", "attempts", "final", "delivered"),
    "latency": ("edition", "delivered", "p50_s", "p90_s", "p99_s"),
    "by_region": ("region", "attempts", "final", "delivered"),
    "by_device": ("tac", "subscribers", "attempts", "final", "delivered"),
    "by_cause": ("cause", "attempts", "final", "subscribers"),
    "unknown_codes": ("namespace", "code", "events", "total", "first_seen"),
    "reconciliation": ("run_at", "diff_class", "count"),
}


@dataclass(frozen=True)
class ReportWeek:
    """One report week: ISO year and week number, starting on ``week_start`` (0 = Monday).

    With another start day the week begins on the nearest such day on or before the ISO Monday
    (``sunday``: the day before), so a label always names seven consecutive days.
    """

    year: int
    week: int
    week_start: int = 0

    def __post_init__(self) -> None:
        date.fromisocalendar(self.year, self.week, 1)  # raises ValueError when out of range
        if not 0 <= self.week_start <= 6:
            raise ValueError(f"week_start must be 0..6, not {self.week_start}")

    @classmethod
    def parse(cls, text: str, week_start: int = 0) -> ReportWeek:
        """``2026-W47`` (or ``2026W47``) -> the week; ValueError with a readable message."""
        m = _WEEK.match(text.strip())
        if m is None:
            raise ValueError(f"not an ISO week: {text!r} (expected e.g. 2026-W47)")
        try:
            return cls(int(m.group(1)), int(m.group(2)), week_start)
        except ValueError:
            raise ValueError(f"no such ISO week: {text!r}") from None

    @classmethod
    def containing(cls, day: date, week_start: int = 0) -> ReportWeek:
        """The week whose seven days include ``day``."""
        # Shift so that the configured start day falls on an ISO Monday, then read the label.
        shift = (7 - week_start) % 7
        iso = (day + timedelta(days=shift)).isocalendar()
        return cls(iso.year, iso.week, week_start)

    @classmethod
    def last_complete(cls, today: date, week_start: int = 0) -> ReportWeek:
        """The newest week that ended before ``today`` began (the default report week)."""
        return cls.containing(today, week_start).previous()

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> date:
        monday = date.fromisocalendar(self.year, self.week, 1)
        return monday - timedelta(days=(7 - self.week_start) % 7)

    @property
    def end(self) -> date:
        """The day after the last day of the week (half-open range)."""
        return self.start + timedelta(days=7)

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(self.start + timedelta(days=i) for i in range(7))

    def previous(self) -> ReportWeek:
        iso = (date.fromisocalendar(self.year, self.week, 1) - timedelta(days=7)).isocalendar()
        return ReportWeek(iso.year, iso.week, self.week_start)


@dataclass(frozen=True)
class NotAvailable:
    """A figure group this installation does not collect yet; ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class ComplaintCounts:
    """Complaints recorded in the week and the subscriber base they are divided by.

    A complaint is counted when an agent answers it with a resend through the agent API, so
    ``complaints`` is the number of resends recorded in the week. ``subscribers`` is the
    number of subscribers with an active subscription; where no subscription status is known,
    the number of subscribers with a delivery in the week. ``basis`` names which one it is.
    """

    complaints: int
    subscribers: int
    basis: str = "active subscriptions"


@dataclass(frozen=True)
class RecoveryCounts:
    """The suspend-and-recover cycle in the week.

    ``under_suspension``: subscribers suspended at any moment of the week (the denominator of
    the recovery rate); ``newly_suspended``: suspended during the week; ``probed``: sent a
    probe MMS in the week; ``recovered``: probe delivered and delivery resumed in the week.
    """

    under_suspension: int
    newly_suspended: int
    probed: int
    recovered: int


@dataclass(frozen=True)
class FunnelCounts:
    """The remedy funnel for subscribers flagged in the week, and its holdout group.

    Treated group: ``flagged`` -> ``remedied`` (help SMS or OTA push sent) -> ``recovered``
    (a final delivery succeeded afterwards). The holdout group gets no remedy:
    ``holdout_flagged`` -> ``holdout_recovered``; both None where no holdout group is
    recorded, with ``holdout_reason`` saying why (the report then shows no uplift).
    """

    flagged: int
    remedied: int
    recovered: int
    holdout_flagged: int | None = None
    holdout_recovered: int | None = None
    holdout_reason: str = "the holdout group is not recorded"


class ReportSource(Protocol):
    """Figures for the weekly report, computed where the data lives (never row by row)."""

    def edition_days(self, start: date, end: date) -> pd.DataFrame:
        """Per (day, edition): ``day`` (date), ``edition`` (str), ``attempts`` (events),
        ``final`` (events with a final outcome), ``delivered`` (final and delivered)."""
        ...

    def latency(self, start: date, end: date) -> pd.DataFrame:
        """Per edition, submit to done of delivered events: ``edition``, ``delivered`` (how
        many latencies), ``p50_s``, ``p90_s``, ``p99_s`` (seconds, linear interpolation as
        PostgreSQL's percentile_cont)."""
        ...

    def by_region(self, start: date, end: date) -> pd.DataFrame:
        """Per region (None when unknown): ``region``, ``attempts``, ``final``, ``delivered``."""
        ...

    def by_device(self, start: date, end: date) -> pd.DataFrame:
        """Per handset TAC of the subscriber's current device (None: no IMEI seen):
        ``tac``, ``subscribers`` (distinct, active in the week), ``attempts``, ``final``,
        ``delivered``. Each active subscriber is counted under exactly one TAC."""
        ...

    def by_cause(self, start: date, end: date) -> pd.DataFrame:
        """Per cause class: ``cause``, ``attempts``, ``final``, ``subscribers`` (distinct
        subscribers with a final outcome of that cause)."""
        ...

    def unknown_codes(self, start: date, end: date) -> pd.DataFrame:
        """Status codes no rule knows, seen in the week: ``namespace``, ``code``, ``events``
        (in the week), ``total`` (since first seen), ``first_seen`` (datetime)."""
        ...

    def complaints(self, start: date, end: date) -> ComplaintCounts | NotAvailable:
        """Complaints in the week and the active subscriber base (see ComplaintCounts)."""
        ...

    def recovery(self, start: date, end: date) -> RecoveryCounts | NotAvailable:
        """Suspended, probed and recovered subscribers (see RecoveryCounts)."""
        ...

    def funnel(self, start: date, end: date) -> FunnelCounts | NotAvailable:
        """The remedy funnel and its holdout group (see FunnelCounts)."""
        ...

    def reconciliation(self, start: date, end: date) -> pd.DataFrame | NotAvailable:
        """Subscription reconciliation runs in the week: ``run_at`` (datetime), ``diff_class``
        (e.g. ``billing_not_content``), ``count`` (differences of that class in that run)."""
        ...
