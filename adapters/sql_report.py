"""The ``ReportSource`` port over the SQL store: every figure is a GROUP BY in the database.

A province-week is about 21 million events on PostgreSQL; only grouped rows (tens to a few
thousand) ever reach Python. Latency percentiles use ``percentile_cont`` on PostgreSQL and, on
SQLite, the same interpolation computed from window functions: the database picks the two
ranked latencies around each percentile, Python interpolates between them.

Complaints, the recovery cycle, the remedy funnel and reconciliation live in tables this
schema does not have yet: those methods return ``NotAvailable``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mmsq.adapters.sql_schema import delivery_events, subscriber_devices, unknown_codes
from mmsq.report_data import (
    COLUMNS,
    ComplaintCounts,
    FunnelCounts,
    NotAvailable,
    RecoveryCounts,
)

__all__ = ["PERCENTILES", "SqlReportSource"]

PERCENTILES = (0.5, 0.9, 0.99)

_ev = delivery_events
_FINAL = sa.func.sum(sa.case((_ev.c.final, 1), else_=0))
_DELIVERED = sa.func.sum(sa.case((sa.and_(_ev.c.final, _ev.c.cause == "delivered"), 1), else_=0))
_LATENCY = _ev.c.done_ts - _ev.c.submitted_ts
_IS_DELIVERY = sa.and_(
    _ev.c.cause == "delivered", _ev.c.done_ts.is_not(None), _ev.c.done_ts >= _ev.c.submitted_ts
)


def _in_week(start: date, end: date) -> sa.ColumnElement[bool]:
    return sa.and_(_ev.c.day >= start, _ev.c.day < end)


def _interpolate(p: float, n: int, ranked: dict[int, float]) -> float | None:
    """percentile_cont: linear interpolation between the 1-based ranks around p * (n - 1)."""
    if n == 0:
        return None
    h = p * (n - 1)
    lo = int(h)
    low = ranked.get(lo + 1)
    if low is None:
        return None
    high = ranked.get(lo + 2, low)
    return low + (h - lo) * (high - low)


_COUNTS = {"attempts", "final", "delivered", "subscribers", "events", "total", "count"}
_SECONDS = {"p50_s", "p90_s", "p99_s"}


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as int64, seconds as float; keys stay objects, so a missing key is None."""
    for col in frame.columns:
        if col in _COUNTS:
            frame[col] = frame[col].astype("int64")
        elif col in _SECONDS:
            frame[col] = frame[col].astype("float64")
    return frame


class SqlReportSource:
    """Implements ``mmsq.report_data.ReportSource`` on a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def _frame(self, name: str, query: sa.Select[Any]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
        return _typed(pd.DataFrame(rows, columns=list(COLUMNS[name]), dtype=object))

    def edition_days(self, start: date, end: date) -> pd.DataFrame:
        q = (
            sa.select(_ev.c.day, _ev.c.edition, sa.func.count(), _FINAL, _DELIVERED)
            .where(_in_week(start, end))
            .group_by(_ev.c.day, _ev.c.edition)
            .order_by(_ev.c.day, _ev.c.edition)
        )
        return self._frame("edition_days", q)

    def by_region(self, start: date, end: date) -> pd.DataFrame:
        q = (
            sa.select(_ev.c.region, sa.func.count(), _FINAL, _DELIVERED)
            .where(_in_week(start, end))
            .group_by(_ev.c.region)
        )
        return self._frame("by_region", q)

    def by_device(self, start: date, end: date) -> pd.DataFrame:
        dev = subscriber_devices
        q = (
            sa.select(
                dev.c.tac,
                sa.func.count(sa.distinct(_ev.c.msisdn)),
                sa.func.count(),
                _FINAL,
                _DELIVERED,
            )
            .select_from(_ev.outerjoin(dev, dev.c.msisdn == _ev.c.msisdn))
            .where(_in_week(start, end))
            .group_by(dev.c.tac)
        )
        return self._frame("by_device", q)

    def by_cause(self, start: date, end: date) -> pd.DataFrame:
        q = (
            sa.select(
                _ev.c.cause,
                sa.func.count(),
                _FINAL,
                sa.func.count(sa.distinct(sa.case((_ev.c.final, _ev.c.msisdn), else_=None))),
            )
            .where(_in_week(start, end))
            .group_by(_ev.c.cause)
        )
        return self._frame("by_cause", q)

    def unknown_codes(self, start: date, end: date) -> pd.DataFrame:
        u = unknown_codes
        q = (
            sa.select(u.c.namespace, u.c.code, sa.func.count(), u.c.count, u.c.first_seen)
            .select_from(
                _ev.join(
                    u, sa.and_(u.c.namespace == _ev.c.status_source, u.c.code == _ev.c.status_code)
                )
            )
            .where(_in_week(start, end))
            .group_by(u.c.namespace, u.c.code, u.c.count, u.c.first_seen)
        )
        return self._frame("unknown_codes", q)

    def latency(self, start: date, end: date) -> pd.DataFrame:
        if self.dialect == "postgresql":
            return self._latency_pg(start, end)
        return self._latency_ranked(start, end)

    def _latency_pg(self, start: date, end: date) -> pd.DataFrame:
        q = (
            sa.select(
                _ev.c.edition,
                sa.func.count(),
                *(sa.func.percentile_cont(p).within_group(_LATENCY) for p in PERCENTILES),
            )
            .where(_in_week(start, end), _IS_DELIVERY)
            .group_by(_ev.c.edition)
        )
        return self._frame("latency", q)

    def _latency_ranked(self, start: date, end: date) -> pd.DataFrame:
        ranked = (
            sa.select(
                _ev.c.edition.label("edition"),
                _LATENCY.label("s"),
                sa.func.row_number()
                .over(partition_by=_ev.c.edition, order_by=_LATENCY)
                .label("rn"),
                sa.func.count().over(partition_by=_ev.c.edition).label("n"),
            )
            .where(_in_week(start, end), _IS_DELIVERY)
            .subquery()
        )
        wanted = []
        for p in PERCENTILES:
            # CAST truncates, which is floor for these non-negative positions.
            lo = sa.cast(sa.literal(p) * (ranked.c.n - 1), sa.Integer) + 1
            wanted.extend([ranked.c.rn == lo, ranked.c.rn == lo + 1])
        q = sa.select(ranked.c.edition, ranked.c.n, ranked.c.rn, ranked.c.s).where(sa.or_(*wanted))
        by_edition: dict[str | None, tuple[int, dict[int, float]]] = {}
        with self.engine.connect() as conn:
            for edition, n, rn, s in conn.execute(q):
                _n, ranks = by_edition.setdefault(edition, (int(n), {}))
                ranks[int(rn)] = float(s)
        rows = [
            (edition, n, *(_interpolate(p, n, ranks) for p in PERCENTILES))
            for edition, (n, ranks) in by_edition.items()
        ]
        return _typed(pd.DataFrame(rows, columns=list(COLUMNS["latency"]), dtype=object))

    # -- figures whose tables arrive with other features -----------------------------------

    def complaints(self, start: date, end: date) -> ComplaintCounts | NotAvailable:
        return NotAvailable("complaints are not recorded by this version (agent API)")

    def recovery(self, start: date, end: date) -> RecoveryCounts | NotAvailable:
        return NotAvailable("the suspend-and-recover state machine is not installed")

    def funnel(self, start: date, end: date) -> FunnelCounts | NotAvailable:
        return NotAvailable("the remedy funnel and holdout group are not recorded yet")

    def reconciliation(self, start: date, end: date) -> pd.DataFrame | NotAvailable:
        return NotAvailable("subscription reconciliation runs are not recorded yet")
